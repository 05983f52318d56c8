package testbed

import (
	"embed"
	"fmt"
	"path"
	"strings"
)

//go:embed topologies/*.yaml
var examples embed.FS

// Example returns one of the example topologies of testbed/topologies by
// name, without its ".yaml" suffix (e.g. "three-hosts").
func Example(name string) (*Topology, error) {
	data, err := examples.ReadFile(path.Join("topologies", strings.TrimSuffix(name, ".yaml")+".yaml"))
	if err != nil {
		return nil, fmt.Errorf("example topology %q: %w", name, err)
	}
	topo, err := ParseTopology(data)
	if err != nil {
		return nil, fmt.Errorf("example topology %q: %w", name, err)
	}
	return topo, nil
}
