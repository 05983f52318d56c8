package wire

import (
	"time"

	"github.com/ovs-dlb/dlb/lb"
)

// MemberHealth is a member's health as the controller knows it: status,
// apart from the group's document. Set on group answers (Group.Health),
// in group stats, and in the agents' health watch (HealthLine), where
// only Group, Member and State are set. Its YAML names are its JSON ones:
// a group written as YAML ("dlbctl group get NAME -o yaml") reads back.
type MemberHealth struct {
	Group  string `json:"group,omitempty" yaml:"group,omitempty"`
	Member string `json:"member" yaml:"member" doc:"IP, or IP:PORT for a member with its own port"`
	State  string `json:"state" yaml:"state" enum:"up,down,unknown,held" doc:"up takes new connections; down, unknown (not probed yet, or its prober cannot reach it) and held (flapping) take none"`
	// Since is when the member entered State (as its prober saw it).
	Since *time.Time `json:"since,omitempty" yaml:"since,omitempty"`
	// Reason says why, in words: "3 probes failed: connection refused".
	Reason string `json:"reason,omitempty" yaml:"reason,omitempty"`
	// Prober is the host that probes the member.
	Prober string `json:"prober,omitempty" yaml:"prober,omitempty"`
	// HeldUntil is when a held member's hold ends.
	HeldUntil *time.Time `json:"held_until,omitempty" yaml:"held_until,omitempty"`
	// Last is the last probe's result.
	Last *ProbeResult `json:"last,omitempty" yaml:"last,omitempty"`
}

// ProbeResult is one probe's outcome.
type ProbeResult struct {
	At     time.Time `json:"at" yaml:"at"`
	OK     bool      `json:"ok" yaml:"ok"`
	Detail string    `json:"detail,omitempty" yaml:"detail,omitempty" maxLength:"200" doc:"What came back: \"syn-ack in 0.3ms\", \"refused (rst)\", \"no answer in 500ms\", \"http 500\""`
}

// ProbeTarget is a member a host is assigned to probe. Members of several
// groups that are probed the same way are one target.
type ProbeTarget struct {
	ID string `json:"id" doc:"The target's id, which the host's reports name"`
	IP string `json:"ip"`
	// MAC is the member's MAC when its group gives one (it tells two VM
	// ports with the same address apart).
	MAC string `json:"mac,omitempty"`
	// Port is the VM port the controller found the member on (from the
	// host's inventory), empty when it is on no host with an agent: the
	// prober then reaches it through the bridge's normal forwarding.
	Port string `json:"port,omitempty"`
	// Source is the address probes are sent from: the VIP of the
	// member's (first) group.
	Source string `json:"source"`
	// Scope is that group's scope: of several VM ports with the member's
	// address, the prober takes the one the scope selects.
	Scope *lb.Scope `json:"scope,omitempty"`
	Probe lb.Probe  `json:"probe"`
	// Members are the group members whose health the target gives.
	Members []MemberRef `json:"members"`
}

// MemberRef names a member of a group.
type MemberRef struct {
	Group  string `json:"group"`
	Member string `json:"member"`
}

// HealthLine is one line of an agent's health watch
// (GET /v1/watch/health?host=H, application/x-ndjson): the first is full
// (every target of the host, the health of every health-checked member);
// the next ones carry what changed. Targets, when present, is the host's
// whole list.
type HealthLine struct {
	Index   uint64         `json:"index"`
	Full    bool           `json:"full,omitempty"`
	Targets []ProbeTarget  `json:"targets,omitempty"`
	Health  []MemberHealth `json:"health,omitempty"`
	// Settling is true while a restarted controller waits for its
	// probers' first reports: an agent keeps the health it had for
	// members the controller calls unknown until then.
	Settling bool `json:"settling,omitempty"`
}

// HealthReport is what a prober host sends (POST /v1/hosts/{name}/health):
// each target's state as its probes decide it (rise, fall, flap hold).
// Full: every target the host probes (after it connects); otherwise only
// the targets whose state or last probe changed.
type HealthReport struct {
	Full    bool           `json:"full,omitempty"`
	Results []TargetHealth `json:"results" maxItems:"100000"`
}

// TargetHealth is a target's state in a report.
type TargetHealth struct {
	Target    string       `json:"target" maxLength:"32"`
	State     string       `json:"state" enum:"up,down,unknown,held"`
	Since     time.Time    `json:"since"`
	Reason    string       `json:"reason,omitempty" maxLength:"200"`
	HeldUntil *time.Time   `json:"held_until,omitempty"`
	Last      *ProbeResult `json:"last,omitempty"`
}
