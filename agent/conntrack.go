package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ovs-dlb/dlb/lb"
)

// conntrackFlusher removes the conntrack entries of members that left a
// group, so that their clients (UDP ones above all) move on at once. It
// speaks to ovs-vswitchd's unixctl socket: `dpctl/flush-conntrack` with
// partial tuples works on OVS 3.1; OpenFlow's per-tuple flush arrives only
// in OVS 3.2.
type conntrackFlusher struct {
	// ctl finds the unixctl socket (its name carries the pid of the
	// running ovs-vswitchd, which changes on restart).
	ctl  func() (string, error)
	zone uint16
}

// flushTuples renders a departure as the original and reply tuples that
// select its connections in the zone: to the VIP port, answered by the
// member's port.
func flushTuples(d lb.Departure) (orig, reply string) {
	src, dst := "ct_nw_src", "ct_nw_dst"
	if d.VIP.Is6() {
		src, dst = "ct_ipv6_src", "ct_ipv6_dst"
	}
	orig = fmt.Sprintf("%s=%s,ct_nw_proto=%d,ct_tp_dst=%d", dst, d.VIP, d.Proto, d.Port)
	reply = fmt.Sprintf("%s=%s,ct_nw_proto=%d,ct_tp_src=%d", src, d.Member, d.Proto, d.TargetPort)
	return orig, reply
}

// flush removes the departed members' entries, one unixctl call each, and
// returns what failed.
func (f *conntrackFlusher) flush(ctx context.Context, gone []lb.Departure) []error {
	path, err := f.ctl()
	if err != nil {
		return []error{err}
	}
	// The bundle that took the members out is applied, but datapath flows
	// cached before it may still send a connection's next packet to a
	// departed member (and commit it anew) until the revalidators have
	// seen the change: wait for them first.
	if _, err := unixctl(ctx, path, "revalidator/wait"); err != nil {
		return []error{fmt.Errorf("revalidator/wait: %w", err)}
	}
	var errs []error
	for _, d := range gone {
		orig, reply := flushTuples(d)
		if _, err := unixctl(ctx, path, "dpctl/flush-conntrack", "zone="+strconv.Itoa(int(lb.ZoneOf(f.zone, d.Scope))), orig, reply); err != nil {
			errs = append(errs, fmt.Errorf("flush %s member %s: %w", d.Group, d.Member, err))
		}
	}
	return errs
}

// vswitchdCtl finds ovs-vswitchd's unixctl socket in its run directory:
// ovs-vswitchd.ctl when it was started with that name, else
// ovs-vswitchd.PID.ctl from its pidfile (the default).
func vswitchdCtl(rundir string) (string, error) {
	named := filepath.Join(rundir, "ovs-vswitchd.ctl")
	if _, err := os.Stat(named); err == nil {
		return named, nil
	}
	pid, err := os.ReadFile(filepath.Join(rundir, "ovs-vswitchd.pid"))
	if err != nil {
		return "", fmt.Errorf("find ovs-vswitchd's control socket (set vswitchd_ctl): %w", err)
	}
	return filepath.Join(rundir, "ovs-vswitchd."+strings.TrimSpace(string(pid))+".ctl"), nil
}

// unixctl runs one command on an OVS daemon's control socket, as
// ovs-appctl does: a JSON-RPC request, one reply.
func unixctl(ctx context.Context, path, method string, params ...string) (string, error) {
	raw, err := unixctlRaw(ctx, path, nil, method, params...)
	if err != nil {
		return "", err
	}
	var rep struct {
		Result *string `json:"result"`
		Error  any     `json:"error"`
	}
	if err := json.Unmarshal(raw, &rep); err != nil {
		return "", fmt.Errorf("unixctl %s: reply: %w", method, err)
	}
	if rep.Error != nil {
		return "", fmt.Errorf("unixctl %s: %v", method, rep.Error)
	}
	if rep.Result == nil {
		return "", nil
	}
	return *rep.Result, nil
}

// unixctlRaw runs one command on an OVS daemon's control socket and
// returns its JSON-RPC reply as it came, in buf (grown as needed): a
// reply of 25 MB (a conntrack table of 100,000 entries) is read without
// decoding it into a string and copying it again.
func unixctlRaw(ctx context.Context, path string, buf []byte, method string, params ...string) ([]byte, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return buf, fmt.Errorf("unixctl %s: %w", path, err)
	}
	defer conn.Close()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(30 * time.Second)
	}
	_ = conn.SetDeadline(deadline)
	if params == nil {
		params = []string{}
	}
	if err := json.NewEncoder(conn).Encode(map[string]any{"id": 0, "method": method, "params": params}); err != nil {
		return buf, fmt.Errorf("unixctl %s: %w", method, err)
	}
	buf = buf[:0]
	var sc objectEnd
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := conn.Read(buf[len(buf):cap(buf)])
		if end := sc.scan(buf[len(buf) : len(buf)+n]); end >= 0 {
			return buf[:len(buf)+end+1], nil
		}
		buf = buf[:len(buf)+n]
		if err != nil {
			return buf, fmt.Errorf("unixctl %s: reply: %w", method, err)
		}
	}
}

// objectEnd finds the end of one JSON object in a stream: the brace that
// closes the first one opened, outside strings.
type objectEnd struct {
	depth         int
	inString, esc bool
	started       bool
}

// scan reads p, the stream's next bytes, and returns the index in p of
// the closing brace, or -1.
func (o *objectEnd) scan(p []byte) int {
	for i, c := range p {
		switch {
		case o.inString:
			switch {
			case o.esc:
				o.esc = false
			case c == '\\':
				o.esc = true
			case c == '"':
				o.inString = false
			}
		case c == '"':
			o.inString = true
		case c == '{':
			o.depth++
			o.started = true
		case c == '}':
			o.depth--
			if o.started && o.depth == 0 {
				return i
			}
		}
	}
	return -1
}

// replyResult is a unixctl reply's result, still escaped as a JSON string
// (without its quotes), or the error the reply carries.
func replyResult(reply []byte) ([]byte, error) {
	const key = `"result":"`
	if i := bytes.Index(reply, []byte(key)); i >= 0 {
		r := reply[i+len(key):]
		esc := false
		for j, c := range r {
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				return r[:j], nil
			}
		}
		return nil, errors.New("unixctl reply: unterminated result")
	}
	var rep struct {
		Result *string `json:"result"`
		Error  any     `json:"error"`
	}
	if err := json.Unmarshal(reply, &rep); err != nil {
		return nil, fmt.Errorf("unixctl reply: %w", err)
	}
	if rep.Error != nil {
		return nil, fmt.Errorf("unixctl: %v", rep.Error)
	}
	return nil, nil // an empty result
}
