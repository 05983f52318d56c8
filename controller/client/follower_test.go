package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ovs-dlb/dlb/controller/wire"
	"github.com/ovs-dlb/dlb/lb"
	"github.com/ovs-dlb/dlb/testbed"
)

func grp(name, vip string, members ...string) lb.Group {
	g := lb.Group{Name: name, VIP: vip, Ports: []lb.PortSpec{{Protocol: "tcp", Port: 80}}}
	for _, m := range members {
		g.Members = append(g.Members, lb.Member{IP: m})
	}
	return g
}

func wg(g lb.Group) wire.Group { return wire.Group{Group: g} }

// TestFollowerTakesAnswersTogether: answers already queued on the stream
// are taken together and delivered once, as the last one's set.
func TestFollowerTakesAnswersTogether(t *testing.T) {
	var got [][]string
	f := &Follower{Deliver: func(groups []lb.Checked, index uint64) {
		var names []string
		for _, g := range groups {
			names = append(names, fmt.Sprintf("%s@%s#%d", g.Name, g.VIP, index))
		}
		got = append(got, names)
	}}
	require.NoError(t, f.answer(&wire.GroupChanges{Index: 5, Full: true, Groups: []wire.Group{wg(grp("web", "10.96.0.10", "10.0.0.1"))}}, false))
	require.NoError(t, f.answer(&wire.GroupChanges{Index: 6, Groups: []wire.Group{wg(grp("db", "10.96.0.20", "10.0.0.2"))}}, true))
	require.NoError(t, f.answer(&wire.GroupChanges{Index: 7, Deleted: []string{"web"}}, true))
	require.Len(t, got, 1, "nothing delivered while more answers are queued")
	require.NoError(t, f.answer(&wire.GroupChanges{Index: 8, Groups: []wire.Group{wg(grp("api", "10.96.0.30", "10.0.0.3"))}}, false))
	assert.Equal(t, [][]string{{"web@10.96.0.10#5"}, {"api@10.96.0.30#8", "db@10.96.0.20#8"}}, got)
	assert.Equal(t, uint64(8), f.Index())
	// A bad answer among queued ones refuses them all; the set stays.
	require.NoError(t, f.answer(&wire.GroupChanges{Index: 9, Groups: []wire.Group{wg(grp("x", "10.96.0.40", "10.0.0.4"))}}, true))
	require.Error(t, f.answer(&wire.GroupChanges{Index: 10, Groups: []wire.Group{wg(grp("bad", "not-an-ip"))}}, false))
	assert.Len(t, got, 2)
	assert.Equal(t, uint64(8), f.Index())
}

// TestFollowerKeepsTheSet: a full answer replaces the set, changes and
// deletions are merged into it, an empty answer only moves the index, a
// set the agent cannot use is refused and changes nothing, and a resumed
// follower delivers its checkpoint when the controller confirms it.
func TestFollowerKeepsTheSet(t *testing.T) {
	var got [][]string
	var idx []uint64
	f := &Follower{Deliver: func(groups []lb.Checked, index uint64) {
		var names []string
		for _, g := range groups {
			names = append(names, g.Name+"@"+g.VIP)
		}
		got = append(got, names)
		idx = append(idx, index)
	}}
	steps := []struct {
		name string
		c    wire.GroupChanges
		want []string // nil: nothing delivered
		err  bool
	}{
		{"full", wire.GroupChanges{Index: 5, Full: true, Groups: []wire.Group{wg(grp("web", "10.96.0.10", "10.0.0.1")), wg(grp("db", "10.96.0.20", "10.0.0.2"))}},
			[]string{"db@10.96.0.20", "web@10.96.0.10"}, false},
		{"one group changed", wire.GroupChanges{Index: 6, Groups: []wire.Group{wg(grp("web", "10.96.0.11", "10.0.0.1"))}},
			[]string{"db@10.96.0.20", "web@10.96.0.11"}, false},
		{"a deletion", wire.GroupChanges{Index: 7, Deleted: []string{"db"}},
			[]string{"web@10.96.0.11"}, false},
		{"the wait ended", wire.GroupChanges{Index: 7}, nil, false},
		{"an unrelated change moves the index", wire.GroupChanges{Index: 8, Deleted: []string{"not-mine"}},
			[]string{"web@10.96.0.11"}, false},
		{"a conflicting set is refused", wire.GroupChanges{Index: 9, Groups: []wire.Group{wg(grp("web2", "10.96.0.11", "10.0.0.3"))}}, nil, true},
		{"an invalid group is refused", wire.GroupChanges{Index: 9, Groups: []wire.Group{wg(grp("bad", "not-an-ip"))}}, nil, true},
		{"after a refusal the set is as it was", wire.GroupChanges{Index: 10, Groups: []wire.Group{wg(grp("aa", "10.96.0.1", "10.0.0.5")), wg(grp("zz", "10.96.0.99", "10.0.0.6"))}},
			[]string{"aa@10.96.0.1", "web@10.96.0.11", "zz@10.96.0.99"}, false},
		{"a name twice: the last stands; a change and a deletion together", wire.GroupChanges{Index: 11, Deleted: []string{"aa"},
			Groups: []wire.Group{wg(grp("mm", "10.96.0.50", "10.0.0.7")), wg(grp("mm", "10.96.0.51", "10.0.0.7")), wg(grp("zz", "10.96.0.98", "10.0.0.6"))}},
			[]string{"mm@10.96.0.51", "web@10.96.0.11", "zz@10.96.0.98"}, false},
		{"full again drops the rest", wire.GroupChanges{Index: 12, Full: true, Groups: []wire.Group{wg(grp("api", "10.96.0.30", "10.0.0.4"))}},
			[]string{"api@10.96.0.30"}, false},
	}
	for _, s := range steps {
		before := len(got)
		err := f.answer(&s.c, false)
		if s.err {
			require.Error(t, err, s.name)
		} else {
			require.NoError(t, err, s.name)
		}
		if s.want == nil {
			assert.Len(t, got, before, "%s: nothing delivered", s.name)
			continue
		}
		require.Len(t, got, before+1, s.name)
		assert.Equal(t, s.want, got[before], s.name)
		assert.Equal(t, s.c.Index, idx[before], s.name)
		assert.Equal(t, s.c.Index, f.Index())
	}

	// Resumed from a checkpoint at 12: "nothing since" delivers it.
	r := &Follower{Deliver: f.Deliver}
	require.NoError(t, r.Resume(12, []lb.Group{grp("api", "10.96.0.30", "10.0.0.4")}))
	before := len(got)
	require.NoError(t, r.answer(&wire.GroupChanges{Index: 12}, false))
	require.Len(t, got, before+1)
	assert.Equal(t, []string{"api@10.96.0.30"}, got[before])
}

// followed runs a Follower on url for host h1 and records what it does.
type followed struct {
	mu      sync.Mutex
	index   uint64
	full    int
	errs    []error
	cancel  context.CancelFunc
	stopped chan struct{}
}

func follow(t *testing.T, url string, idle time.Duration) *followed {
	t.Helper()
	cl, err := New(url, Options{})
	require.NoError(t, err)
	c, err := cl.ForHost("h1")
	require.NoError(t, err)
	fl := &followed{stopped: make(chan struct{})}
	f := &Follower{Client: c, Idle: idle, Wait: time.Second,
		Deliver: func(_ []lb.Checked, index uint64) { fl.mu.Lock(); fl.index = index; fl.mu.Unlock() },
		Observe: func(ch *wire.GroupChanges, err error) {
			fl.mu.Lock()
			defer fl.mu.Unlock()
			if err != nil {
				fl.errs = append(fl.errs, err)
			} else if ch.Full {
				fl.full++
			}
		}}
	ctx, cancel := context.WithCancel(context.Background())
	fl.cancel = cancel
	go func() { defer close(fl.stopped); _ = f.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-fl.stopped })
	return fl
}

func (fl *followed) at() uint64 { fl.mu.Lock(); defer fl.mu.Unlock(); return fl.index }

func indexOf(t *testing.T, body []byte) uint64 {
	var g wire.Group
	require.NoError(t, json.Unmarshal(body, &g))
	return g.ModifyIndex
}

// TestFollowerStreams: through the watch stream a change arrives at once;
// after the controller is killed and restarted the follower resumes
// without a full answer; a controller without the stream is followed by
// long polls, and so is one behind a proxy that holds the stream; a
// stream gone silent after its first line is opened again.
func TestFollowerStreams(t *testing.T) {
	ctl := testbed.StartController(t)
	web := `{"name":"web","vip":"10.96.0.10","ports":[{"protocol":"tcp","port":80}],"members":[{"ip":"10.0.0.11"}]}`
	idx := indexOf(t, ctl.Call("POST", "/v1/groups", web, 201))
	fl := follow(t, ctl.URL(), time.Minute)
	require.Eventually(t, func() bool { return fl.at() >= idx }, 10*time.Second, time.Millisecond)

	start := time.Now()
	idx = indexOf(t, ctl.Call("PATCH", "/v1/groups/web/members/10.0.0.11", `{"weight":5}`, 200))
	require.Eventually(t, func() bool { return fl.at() >= idx }, 5*time.Second, time.Millisecond)
	t.Logf("a change reached the follower %v after the request", time.Since(start))

	ctl.Kill()
	ctl.Start()
	idx = indexOf(t, ctl.Call("PATCH", "/v1/groups/web/members/10.0.0.11", `{"weight":6}`, 200))
	require.Eventually(t, func() bool { return fl.at() >= idx }, 10*time.Second, 5*time.Millisecond)
	fl.mu.Lock()
	assert.Equal(t, 1, fl.full, "only the first answer was full: the follower resumed")
	assert.NotEmpty(t, fl.errs, "the kill was seen")
	fl.mu.Unlock()

	// An older controller: no stream (404), long polls instead.
	target, err := url.Parse(ctl.URL())
	require.NoError(t, err)
	proxy := httputil.NewSingleHostReverseProxy(target)
	old := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/stream") {
			http.NotFound(w, r)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer old.Close()
	fo := follow(t, old.URL, time.Minute)
	require.Eventually(t, func() bool { return fo.at() >= idx }, 10*time.Second, 5*time.Millisecond)
	idx = indexOf(t, ctl.Call("PATCH", "/v1/groups/web/members/10.0.0.11", `{"weight":7}`, 200))
	require.Eventually(t, func() bool { return fo.at() >= idx }, 10*time.Second, 5*time.Millisecond, "long polls follow")

	// A proxy that holds the stream (no first line): long polls instead.
	held := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/stream") {
			w.Header().Set("Content-Type", "application/x-ndjson")
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
			<-r.Context().Done()
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer held.Close()
	fh := follow(t, held.URL, 300*time.Millisecond)
	require.Eventually(t, func() bool { return fh.at() >= idx }, 10*time.Second, 5*time.Millisecond, "long polls after a held stream")
	idx = indexOf(t, ctl.Call("PATCH", "/v1/groups/web/members/10.0.0.11", `{"weight":8}`, 200))
	require.Eventually(t, func() bool { return fh.at() >= idx }, 10*time.Second, 5*time.Millisecond)

	// A stream that goes silent (a proxy holding it, a dead controller) is
	// taken for broken after Idle, and opened again.
	var opened atomic.Int32
	silent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		opened.Add(1)
		w.Header().Set("Content-Type", "application/x-ndjson")
		fmt.Fprintf(w, `{"index":%d,"full":true,"groups":[]}`+"\n", idx)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer silent.Close()
	fs := follow(t, silent.URL, 200*time.Millisecond)
	require.Eventually(t, func() bool { return opened.Load() >= 2 }, 5*time.Second, 10*time.Millisecond, "opened again")
	fs.mu.Lock()
	require.NotEmpty(t, fs.errs)
	assert.Contains(t, fs.errs[0].Error(), "silent for 200ms")
	fs.mu.Unlock()
}
