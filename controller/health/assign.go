package health

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/ovs-dlb/dlb/controller/wire"
	"github.com/ovs-dlb/dlb/lb"
)

// Host is what assignment needs of a host: its name, its VM ports, and
// whether it can probe now (an agent holds its health watch open).
type Host struct {
	Name  string
	Ports []wire.HostPort
	Alive bool
}

// Assign decides who probes what: every member of a health-checked group
// is probed by one host, the one whose VM port has the member's address
// (and MAC, when the group gives one). Where several hosts have it
// (overlapping tenant addresses), the one whose port the group's scope
// names by iface-id wins, else the first by name. A member on no host's
// port is probed by an alive host chosen by rendezvous hashing on the
// member, so that a host that goes away moves only its own members.
// Members probed the same way from the same host, in several groups, are
// one target. The result is by host, each list sorted by id.
func Assign(groups []lb.Group, hosts []Host) map[string][]wire.ProbeTarget {
	type found struct{ host, port string }
	byIP := map[netip.Addr][]found{}
	macOf := map[found]string{}
	ifaceOf := map[found]string{}
	sorted := slices.Clone(hosts)
	slices.SortFunc(sorted, func(a, b Host) int { return strings.Compare(a.Name, b.Name) })
	for _, h := range sorted {
		for _, p := range h.Ports {
			f := found{h.Name, p.Name}
			macOf[f], ifaceOf[f] = strings.ToLower(p.MAC), p.IfaceID
			for _, s := range p.IPs {
				if a, err := netip.ParseAddr(s); err == nil {
					byIP[a.Unmap()] = append(byIP[a.Unmap()], f)
				}
			}
		}
	}
	var alive []string
	for _, h := range sorted {
		if h.Alive {
			alive = append(alive, h.Name)
		}
	}
	targets := map[string]*wire.ProbeTarget{}
	hostOf := map[string]string{}
	for gi := range groups {
		g := &groups[gi]
		if g.HealthCheck == nil {
			continue
		}
		for i, m := range g.Members {
			addr, err := netip.ParseAddr(m.IP)
			if err != nil {
				continue
			}
			addr = addr.Unmap()
			mac := ""
			if hw, err := net.ParseMAC(m.MAC); err == nil {
				mac = hw.String()
			}
			var cands []found
			for _, f := range byIP[addr] {
				if mac == "" || macOf[f] == mac {
					cands = append(cands, f)
				}
			}
			if len(cands) > 1 && g.Scope != nil && len(g.Scope.IfaceIDs) > 0 {
				var in []found
				for _, f := range cands {
					if slices.Contains(g.Scope.IfaceIDs, ifaceOf[f]) {
						in = append(in, f)
					}
				}
				if len(in) > 0 {
					cands = in
				}
			}
			var host, port string
			switch {
			case len(cands) > 0:
				host, port = cands[0].host, cands[0].port
			case len(alive) > 0:
				host = rendezvous(alive, addr.String()+"/"+mac)
			default:
				continue // nobody can probe it: it stays unknown
			}
			probe := *g.ProbeOf(i)
			t := wire.ProbeTarget{IP: addr.String(), MAC: mac, Port: port, Source: g.VIP, Scope: g.Scope, Probe: probe}
			if v, err := netip.ParseAddr(g.VIP); err == nil {
				t.Source = v.Unmap().String()
			}
			id := targetID(host, &t)
			ref := wire.MemberRef{Group: g.Name, Member: lb.MemberLabel(addr, m.Port)}
			if have, ok := targets[id]; ok {
				have.Members = append(have.Members, ref)
				continue
			}
			t.ID, t.Members = id, []wire.MemberRef{ref}
			targets[id], hostOf[id] = &t, host
		}
	}
	out := map[string][]wire.ProbeTarget{}
	for id, t := range targets {
		slices.SortFunc(t.Members, func(a, b wire.MemberRef) int {
			return strings.Compare(a.Group+"\x00"+a.Member, b.Group+"\x00"+b.Member)
		})
		out[hostOf[id]] = append(out[hostOf[id]], *t)
	}
	for _, ts := range out {
		slices.SortFunc(ts, func(a, b wire.ProbeTarget) int { return strings.Compare(a.ID, b.ID) })
	}
	return out
}

// targetID names a target by everything that makes it: the host, the
// member's address, MAC and port, the source, the scope and the probe.
// Two groups whose members are probed the same way share it.
func targetID(host string, t *wire.ProbeTarget) string {
	h := fnv.New64a()
	probe, _ := json.Marshal(t.Probe)
	scope := ""
	if t.Scope != nil {
		scope = t.Scope.Key()
	}
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00%s\x00%s\x00%s", host, t.IP, t.MAC, t.Port, t.Source, scope, probe)
	return fmt.Sprintf("%016x", h.Sum64())
}

// rendezvous is the host with the highest hash of (host, key).
func rendezvous(hosts []string, key string) string {
	best, bestH := "", uint64(0)
	for _, name := range hosts {
		h := fnv.New64a()
		h.Write([]byte(name))
		h.Write([]byte{0})
		h.Write([]byte(key))
		if v := h.Sum64(); best == "" || v > bestH {
			best, bestH = name, v
		}
	}
	return best
}
