package testbed

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// DefaultBaseDir holds one run directory per testbed.
const DefaultBaseDir = "/run/dlb-testbed"

// stateFile is the name of the state file in a run directory.
const stateFile = "state.json"

// Owner kinds recorded in the state, so stale testbeds of dead test
// processes can be reaped without touching a user's CLI testbed.
const (
	ownerCLI  = "cli"
	ownerTest = "go-test"
)

// state is what a run directory remembers of its testbed, so that any
// process can find, inspect and tear it down.
type state struct {
	Name     string    `json:"name"`
	Prefix   string    `json:"prefix"`
	Owner    string    `json:"owner"`
	OwnerPID int       `json:"owner_pid"`
	Created  time.Time `json:"created"`
	Topology Topology  `json:"topology"`
	// ServiceBinary is the dlb-testbed binary that runs VM services.
	ServiceBinary string `json:"service_binary,omitempty"`
}

func newPrefix() string {
	b := make([]byte, 2)
	_, _ = rand.Read(b)
	return "dlb" + hex.EncodeToString(b)
}

func writeState(dir string, st *state) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, stateFile+".tmp")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("write testbed state: %w", err)
	}
	return os.Rename(tmp, filepath.Join(dir, stateFile))
}

// ErrNotRunning says a run directory holds no testbed.
var ErrNotRunning = errors.New("no testbed is running there")

func readState(dir string) (*state, error) {
	data, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", dir, ErrNotRunning)
	}
	if err != nil {
		return nil, fmt.Errorf("read testbed state: %w", err)
	}
	var st state
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("%s: corrupt testbed state: %w", dir, err)
	}
	return &st, nil
}
