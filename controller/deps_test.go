package controller

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestControllerSideLinksNoOpenFlow keeps the edges of docs/architecture.md:
// what the controller, dlbctl and the group model build must not link
// OpenFlow (ofctrl, libOpenflow, the pipeline compiler) or the testbed,
// not even through another package.
func TestControllerSideLinksNoOpenFlow(t *testing.T) {
	forbidden := []string{
		"github.com/ovs-dlb/dlb/ofctrl",
		"github.com/ovs-dlb/dlb/pipeline",
		"github.com/ovs-dlb/dlb/testbed",
		"antrea.io/libOpenflow",
	}
	roots := []string{"github.com/ovs-dlb/dlb/controller/...", "github.com/ovs-dlb/dlb/cmd/dlb-controller",
		"github.com/ovs-dlb/dlb/cmd/dlbctl", "github.com/ovs-dlb/dlb/lb"}
	for _, root := range roots {
		out, err := exec.Command("go", "list", "-deps", root).CombinedOutput()
		require.NoError(t, err, "go list -deps %s: %s", root, out)
		for _, dep := range strings.Fields(string(out)) {
			for _, f := range forbidden {
				if dep == f || strings.HasPrefix(dep, f+"/") {
					t.Errorf("%s depends on %s (docs/architecture.md, package edges)", root, dep)
				}
			}
		}
	}
}
