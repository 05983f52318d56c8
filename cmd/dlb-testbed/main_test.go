package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ovs-dlb/dlb/testbed"
)

// TestCLI drives the binary as a user would: up, exec curl, load, status,
// down, each from a separate process.
func TestCLI(t *testing.T) {
	testbed.Require(t)
	bin, err := testbed.ServiceBinary()
	require.NoError(t, err)
	name := fmt.Sprintf("cli%d", os.Getpid())
	cli := func(args ...string) (string, error) {
		cmd := exec.Command(bin, append([]string{"--name", name}, args...)...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	t.Cleanup(func() { _, _ = cli("down") })

	start := time.Now()
	out, err := cli("up", "-f", "../../testbed/topologies/three-hosts.yaml")
	require.NoError(t, err, out)
	t.Logf("up took %s:\n%s", time.Since(start), out)
	assert.Contains(t, out, "br-int.mgmt")
	assert.Contains(t, out, "db.sock")
	assert.Contains(t, out, "10.0.0.13/24")

	out, err = cli("exec", "c1", "--", "curl", "-s", "--max-time", "5", "http://10.0.0.12:8080/")
	require.NoError(t, err, out)
	assert.Equal(t, "s2\n", out)
	_, err = cli("exec", "c1", "--", "sh", "-c", "exit 3")
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, 3, ee.ExitCode(), "exec passes the command's exit status on")

	out, err = cli("load", "c1", "10.0.0.12:8080", "--count", "1000", "-o", "json")
	require.NoError(t, err, out)
	var res testbed.LoadResult
	require.NoError(t, json.Unmarshal([]byte(out), &res), out)
	assert.Equal(t, map[string]int{"s2": 1000}, res.Answers)
	assert.Positive(t, res.RatePerSecond)
	t.Logf("1000 connections c1 -> s2 at %.0f/s", res.RatePerSecond)

	out, err = cli("load", "c1", "10.0.0.11:8080", "10.0.0.12:8080", "--count", "100", "-o", "json")
	require.NoError(t, err, out)
	res = testbed.LoadResult{}
	require.NoError(t, json.Unmarshal([]byte(out), &res), out)
	assert.Equal(t, map[string]int{"s1": 50, "s2": 50}, res.Answers, "several targets are taken round-robin")

	out, err = cli("load", "c2", "10.0.0.11:5353", "--proto", "udp", "--count", "200")
	require.NoError(t, err, out)
	assert.Contains(t, out, "s1")
	assert.Contains(t, out, "200 answered, 0 failed")

	out, err = cli("load", "c2", "10.0.0.11:9", "--count", "3")
	require.ErrorAs(t, err, &ee, out)
	assert.Equal(t, 2, ee.ExitCode(), "failures make load exit 2")
	assert.Contains(t, out, "refused")

	out, err = cli("probe", "c1", "10.0.0.12:8080", "--want", "s2", "-o", "json")
	require.NoError(t, err, out)
	var pr testbed.ProbeResult
	require.NoError(t, json.Unmarshal([]byte(out), &pr), out)
	assert.Equal(t, "s2", pr.Server)
	assert.Positive(t, pr.Attempts)
	out, err = cli("probe", "c1", "10.0.0.12:8080", "--want", "s3", "--max", "100ms")
	require.ErrorAs(t, err, &ee, out)
	assert.Equal(t, 2, ee.ExitCode(), "a probe without the wanted answer exits 2")
	assert.Contains(t, out, "no answer from s3 in 100ms")
	out, err = cli("probe", "c1", "10.0.0.11:9", "--max", "50ms")
	require.ErrorAs(t, err, &ee, out)
	assert.Contains(t, out, "no connection in 50ms")

	out, err = cli("status", "-o", "json")
	require.NoError(t, err, out)
	var st testbed.Status
	require.NoError(t, json.Unmarshal([]byte(out), &st), out)
	require.NotEmpty(t, st.Prefix)
	out, err = cli("status")
	require.NoError(t, err, out)
	for _, vm := range []string{"c1", "c2", "c3", "s1", "s2", "s3"} {
		assert.Contains(t, out, vm)
	}

	out, err = cli("down")
	require.NoError(t, err, out)
	out, err = cli("status")
	require.Error(t, err)
	assert.Contains(t, out, "no testbed is running")
	ns, err := exec.Command("ip", "netns", "list").Output()
	require.NoError(t, err)
	assert.NotContains(t, string(ns), st.Prefix, "no namespace of the testbed is left")
	procs, err := exec.Command("ps", "-eo", "stat=,args=").Output()
	require.NoError(t, err)
	for _, l := range strings.Split(string(procs), "\n") {
		if !strings.HasPrefix(l, "Z") {
			assert.NotContains(t, l, st.RunDir+"/", "no process of the testbed is left")
		}
	}
}

func TestUpRefusesBadTopology(t *testing.T) {
	bin, err := testbed.ServiceBinary()
	require.NoError(t, err)
	f := t.TempDir() + "/bad.yaml"
	require.NoError(t, os.WriteFile(f, []byte("hosts:\n  - name: h1\n    vms:\n      - {name: c1, ip: 10.0.0.1/33}\n"), 0o644))
	name := fmt.Sprintf("bad%d", os.Getpid())
	out, err := exec.Command(bin, "--name", name, "--base-dir", t.TempDir(), "up", "-f", f).CombinedOutput()
	require.Error(t, err)
	assert.Contains(t, string(out), "line 4: hosts[0].vms[0].ip")
	assert.NotContains(t, string(out), "is up")
}
