package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ovs-dlb/dlb/testbed"
)

// weights reads every group's first member weight.
func weights(t *testing.T, c *testbed.Controller) map[string]int {
	t.Helper()
	resp, err := http.Get(c.URL() + "/v1/groups")
	require.NoError(t, err)
	defer resp.Body.Close()
	var list struct {
		Groups []struct {
			Name    string `json:"name"`
			Members []struct {
				Weight int `json:"weight"`
			} `json:"members"`
		} `json:"groups"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&list))
	out := map[string]int{}
	for _, g := range list.Groups {
		out[g.Name] = g.Members[0].Weight
	}
	return out
}

// TestNoAcknowledgedWriteIsLost: 1,000 sequential writes while the
// embedded ovsdb-server is killed (-9) once and the controller is killed
// (-9) twice, each time started again on the same data directory: every
// write answered 2xx is in the store afterwards (a write whose answer was
// lost may be there too: it is at least as new as the last one answered).
func TestNoAcknowledgedWriteIsLost(t *testing.T) {
	c := testbed.StartController(t)
	const writes, groups = 1000, 50
	client := &http.Client{Timeout: 10 * time.Second}
	var sent atomic.Int64
	killed := make(chan string, 2)
	go func() {
		for _, at := range []struct {
			n    int64
			what string
		}{{300, "ovsdb-server"}, {600, "controller"}} {
			for sent.Load() < at.n {
				time.Sleep(100 * time.Microsecond)
			}
			if at.what == "ovsdb-server" {
				_ = syscall.Kill(c.OVSDBPID(), syscall.SIGKILL)
			} else {
				_ = syscall.Kill(c.PID(), syscall.SIGKILL)
			}
			killed <- fmt.Sprintf("%s at write %d", at.what, sent.Load())
		}
	}()
	lastAcked := map[string]int{} // group -> weight of its last 2xx write
	acked, failed, restarts := 0, 0, 0
	for i := 0; i < writes; i++ {
		name := fmt.Sprintf("g%d", i%groups)
		doc := fmt.Sprintf(`{"name":%q,"vip":"10.96.%d.1","ports":[{"protocol":"tcp","port":80}],"members":[{"ip":"10.0.0.11","weight":%d}]}`, name, i%groups, i+1)
		req, err := http.NewRequest("PUT", c.URL()+"/v1/groups/"+name, strings.NewReader(doc))
		require.NoError(t, err)
		sent.Add(1)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		if err == nil && resp.StatusCode/100 == 2 {
			acked++
			lastAcked[name] = i + 1
			continue
		}
		failed++
		if c.Exited() {
			c.Kill()  // reaped already: forget it
			c.Start() // on the same data directory
			restarts++
		} else {
			time.Sleep(10 * time.Millisecond) // the ovsdb-server is being restarted
		}
	}
	t.Logf("killed with SIGKILL: %s; %s", <-killed, <-killed)
	// Once more, with no write in flight: then read what survived.
	c.Kill()
	c.Start()
	got := weights(t, c)
	t.Logf("%d writes: %d answered 2xx, %d failed, controller restarted %d times; %d groups stored", writes, acked, failed, restarts, len(got))
	assert.GreaterOrEqual(t, acked, writes*9/10, "most writes succeed")
	assert.Equal(t, 1, restarts, "the controller was killed once during the writes")
	for name, w := range lastAcked {
		g, ok := got[name]
		if !assert.True(t, ok, "group %s acknowledged at weight %d is gone", name, w) {
			continue
		}
		assert.GreaterOrEqual(t, g, w, "group %s: an acknowledged write (weight %d) was lost (stored: %d)", name, w, g)
		assert.Equal(t, 0, (g-1)%groups-atoi(strings.TrimPrefix(name, "g")), "group %s holds a write of another group", name)
	}
	_, err := os.Stat(filepath.Join(c.Dir, "dlb.db"))
	assert.NoError(t, err, "the database is a file of the data directory")
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

// TestDataDirIsLocked: a second controller on the same data directory is
// refused, naming the directory and the first one's pid; after a kill -9
// of the first, a new one starts (no stale lock, no orphaned server).
func TestDataDirIsLocked(t *testing.T) {
	c := testbed.StartController(t)
	bin, err := testbed.Binary("dlb-controller")
	require.NoError(t, err)
	out, err := exec.Command(bin, "--listen", testbed.FreeAddr(t), "--data-dir", c.Dir).CombinedOutput()
	require.Error(t, err)
	assert.Contains(t, string(out), "data_dir: "+c.Dir+" is in use by another dlb-controller (pid "+strconv.Itoa(c.PID())+")")
	orphan := c.OVSDBPID()
	c.Kill()
	c.Start()
	assert.NotEqual(t, orphan, c.OVSDBPID())
	assert.False(t, testbed.Alive(orphan), "the killed controller's ovsdb-server is gone")
}

// TestConfigErrors: bad settings are refused, naming the setting.
func TestConfigErrors(t *testing.T) {
	for _, tt := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--log-level", "loud"}, nil, "log_level"},
		{[]string{"--max-body-bytes", "10"}, nil, "max_body_bytes"},
		{[]string{"--listen", "127.0.0.1:99999"}, nil, "listen"},
		{[]string{"--listen", "127.0.0.1:0", "--pprof-addr", "nowhere:x"}, nil, "pprof_addr"},
		{nil, map[string]string{"DLB_LISTEN": "nonsense"}, "listen"},
	} {
		t.Run(tt.want, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			cmd := newRoot()
			cmd.SetArgs(append(tt.args, "--data-dir", t.TempDir()))
			err := cmd.Execute()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

// TestProfilesOnTheirOwnAddress: --pprof-addr serves Go's profiles there,
// and the API does not.
func TestProfilesOnTheirOwnAddress(t *testing.T) {
	addr := testbed.FreeAddr(t)
	c := testbed.StartController(t, "--pprof-addr", addr)
	code, body := curl(t, "http://"+addr+"/debug/pprof/")
	assert.Equal(t, 200, code)
	assert.Contains(t, body, "goroutine")
	code, _ = curl(t, c.URL()+"/debug/pprof/")
	assert.Equal(t, 404, code, "the API does not serve profiles")
}

// curl runs curl and returns the status and body.
func curl(t *testing.T, args ...string) (int, string) {
	t.Helper()
	out, err := exec.Command("curl", append([]string{"-sS", "-w", "\n%{http_code}"}, args...)...).CombinedOutput()
	require.NoError(t, err, "curl %v: %s", args, out)
	text := strings.TrimRight(string(out), "\n")
	i := strings.LastIndexByte(text, '\n')
	code, err := strconv.Atoi(text[i+1:])
	require.NoError(t, err, "%s", out)
	return code, text[:max(i, 0)]
}

// TestCurlRoundTrip: what an admin does with curl — create, get, list,
// patch a member, delete — and ovsdb-client dump shows the rows.
func TestCurlRoundTrip(t *testing.T) {
	c := testbed.StartController(t)
	base := c.URL() + "/v1/groups"
	dump := func() string {
		out, err := exec.Command("ovsdb-client", "dump", c.OVSDB(), "DLB").CombinedOutput()
		require.NoError(t, err, "%s", out)
		return string(out)
	}
	code, body := curl(t, "-X", "POST", base, "-H", "Content-Type: application/json", "-d",
		`{"name":"web","vip":"10.96.0.10","ports":[{"protocol":"tcp","port":80,"target_port":8080}],"members":[{"ip":"10.0.0.11"},{"ip":"10.0.0.12","weight":50}]}`)
	require.Equal(t, 201, code, body)
	code, body = curl(t, base+"/web")
	require.Equal(t, 200, code, body)
	assert.Contains(t, body, `"modify_index":2`)
	code, body = curl(t, base)
	require.Equal(t, 200, code, body)
	assert.Contains(t, body, `"groups":[{"name":"web"`)
	code, body = curl(t, "-X", "PATCH", base+"/web/members/10.0.0.12", "-H", `If-Match: "2"`, "-d", `{"state":"draining","weight":7}`)
	require.Equal(t, 200, code, body)
	d := dump()
	t.Logf("ovsdb-client dump:\n%s", d)
	assert.Regexp(t, `"10\.0\.0\.12"\s+\[\]\s+0\s+draining\s+7`, d, "the Member row")
	assert.Regexp(t, `"10\.0\.0\.11"\s+\[\]\s+0\s+active\s+100`, d)
	assert.Regexp(t, `web\s+\[[0-9a-f-]+\]`, d, "the Group row and its VIP_Port")
	code, body = curl(t, "-X", "PATCH", base+"/web/members/10.0.0.12", "-H", `If-Match: "2"`, "-d", `{"state":"active"}`)
	require.Equal(t, 409, code, "a stale If-Match: %s", body)
	code, body = curl(t, "-X", "DELETE", base+"/web")
	require.Equal(t, 204, code, body)
	d = dump()
	assert.NotContains(t, d, "10.0.0.12", "the group's rows are gone with it")
	assert.NotContains(t, d, "10.96.0.10", "no Group row")
}
