package main

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ovs-dlb/dlb/testbed"
)

// TestDemo runs the README's main job, deploy/demo.sh (what `make demo`
// runs), and checks what it shows: agents registered, the group applied
// on every host, every connection answered, the drained member avoided.
func TestDemo(t *testing.T) {
	testbed.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The demo runs the built binaries: those of make (DLB_BIN_DIR), else
	// built here.
	bin := os.Getenv("DLB_BIN_DIR")
	if bin == "" {
		bin = t.TempDir()
		out, err := exec.CommandContext(ctx, "go", "build", "-o", bin+"/", "github.com/ovs-dlb/dlb/cmd/...").CombinedOutput()
		require.NoError(t, err, "go build ./cmd/...: %s", out)
	}
	start := time.Now()
	cmd := exec.CommandContext(ctx, "bash", "../../deploy/demo.sh")
	cmd.Env = append(os.Environ(), "BIN="+bin, "KEEP=0")
	out, err := cmd.CombinedOutput()
	took := time.Since(start)
	text := string(out)
	require.NoError(t, err, "%s", text)
	t.Logf("demo took %v", took.Round(100*time.Millisecond))
	assert.Less(t, took, 2*time.Minute)
	for _, h := range []string{"h1", "h2", "h3"} {
		assert.Regexp(t, h+`\s+yes\s+`, text, "agent on %s registered and connected", h)
	}
	assert.Contains(t, text, "Applied:    3/3 hosts")
	assert.Equal(t, 5, strings.Count(text, "300 answered, 0 failed"), "every connection and datagram answered")
	after := text[strings.Index(text, "dlbctl member drain"):]
	assert.NotRegexp(t, `(?m)^s3\s`, after[:strings.Index(after, "The store")], "no new connection to the drained member")
	assert.Contains(t, text, `"10.0.0.13" []  0    draining 100`, "ovsdb-client dump shows the drained member")
	// The members' statistics before the drain: the 600 TCP connections
	// and 300 UDP flows, counted by the agents and summed by the
	// controller.
	sums := map[string]int{}
	for _, m := range regexp.MustCompile(`(?m)^(tcp/80|udp/53)\s+\S+\s+\S+\s+\d+\s+[\d.]+\s+(\d+)\s`).FindAllStringSubmatch(text, -1) {
		n, _ := strconv.Atoi(m[2])
		sums[m[1]] += n
	}
	assert.Equal(t, map[string]int{"tcp/80": 600, "udp/53": 300}, sums, "dlbctl group stats: every connection counted once")
	assert.Contains(t, text, `testbed "demo" is down`)
}
