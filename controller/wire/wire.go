// Package wire holds the JSON documents of the controller's REST API,
// shared by the server (controller/api) and its clients (dlbctl).
//
// It owns: the documents' shapes. It must not touch: I/O of any kind.
package wire

import (
	"time"

	"github.com/ovs-dlb/dlb/lb"
)

// Group is the group document (the lb model) with the indexes of the
// group's creation and last change.
type Group struct {
	lb.Group    `yaml:",inline"`
	CreateIndex uint64 `json:"create_index,omitempty" yaml:"create_index,omitempty" doc:"Index of the group's creation (set by the controller)"`
	ModifyIndex uint64 `json:"modify_index,omitempty" yaml:"modify_index,omitempty" doc:"Index of the group's last change. In a PUT or PATCH body it acts as If-Match."`
	// Applied is set on GET /v1/groups/{name}, ignored in a body.
	Applied *Applied `json:"applied,omitempty" yaml:"applied,omitempty" doc:"On how many hosts the group's latest version is installed (set by the controller)"`
}

// GroupList is every group, by name, at an index.
type GroupList struct {
	Index  uint64  `json:"index" doc:"Index of the last change to any group"`
	Groups []Group `json:"groups"`
}

// Host is a hypervisor whose agent registered with the controller: what
// it registered (stored) and how it is doing (kept in the controller's
// memory: heartbeats and watches).
type Host struct {
	Name        string            `json:"name"`
	Address     string            `json:"address,omitempty"`
	Version     string            `json:"version,omitempty" doc:"The agent's version"`
	Ports       []HostPort        `json:"ports" doc:"The VM ports on the host's bridge"`
	ExternalIDs map[string]string `json:"external_ids,omitempty"`
	CreateIndex uint64            `json:"create_index"`
	ModifyIndex uint64            `json:"modify_index"`
	HostStatus
}

// HostStatus is how an agent is doing, from its heartbeats and watches.
type HostStatus struct {
	Connected     bool       `json:"connected" doc:"A watch is open, or a heartbeat came within the last 30 s"`
	LastHeartbeat *time.Time `json:"last_heartbeat,omitempty"`
	AppliedIndex  uint64     `json:"applied_index" doc:"The groups index the agent has installed in its switch"`
}

// HostPort is a VM port an agent reported.
type HostPort struct {
	Name    string   `json:"name"`
	IfaceID string   `json:"iface_id,omitempty"`
	MAC     string   `json:"mac,omitempty"`
	IPs     []string `json:"ips,omitempty"`
}

// HostRegistration is what an agent registers (PUT /v1/hosts/{name}).
type HostRegistration struct {
	Version string     `json:"version,omitempty"`
	Address string     `json:"address,omitempty"`
	Ports   []HostPort `json:"ports" required:"false"`
}

// HeartbeatInterval is how often an agent reports; the controller shows a
// host disconnected when it has no watch open and its last report is older
// than three of them.
const HeartbeatInterval = 10 * time.Second

// StreamKeepAlive is how often an idle watch stream carries a line without
// changes: proxies see traffic, and agents a live controller (an agent
// takes a stream silent for three of these for a broken one).
const StreamKeepAlive = 25 * time.Second

// Heartbeat is an agent's periodic report (POST /v1/hosts/{name}/heartbeat).
type Heartbeat struct {
	AppliedIndex uint64 `json:"applied_index" doc:"The groups index the agent has installed"`
}

// GroupChanges answers an agent's watch: the groups that concern its host
// and changed after the index it asked from, and the names of those gone
// (or no longer for it). Full: the whole set, for an agent that asked from
// 0 or from an index older than the deletions the controller remembers.
type GroupChanges struct {
	Index   uint64   `json:"index" doc:"Ask from this index next"`
	Full    bool     `json:"full,omitempty"`
	Groups  []Group  `json:"groups"`
	Deleted []string `json:"deleted,omitempty"`
}

// Applied says on how many of the hosts a group concerns its latest
// version is installed.
type Applied struct {
	Hosts   int `json:"hosts"`
	Applied int `json:"applied"`
}

// HostList is every host, by name, at an index.
type HostList struct {
	Index uint64 `json:"index"`
	Hosts []Host `json:"hosts"`
}

// MemberChange is what a member PATCH may change; fields left out stay.
type MemberChange struct {
	Weight *int    `json:"weight,omitempty" doc:"1..65535"`
	State  *string `json:"state,omitempty" doc:"active, draining (no new connections, existing ones kept) or disabled"`
}

// Error is every error answer's body: a message, and the fields at fault
// with what is wrong with each.
type Error struct {
	Message string       `json:"error" doc:"What went wrong"`
	Fields  []FieldError `json:"fields,omitempty" doc:"The fields at fault"`
}

// FieldError is one field at fault. Paths name body fields as the group
// document does ("members[1].weight"); others start with where they are
// ("path.name", "query.wait", "header.If-Match").
type FieldError struct {
	Path    string `json:"path"`
	Message string `json:"message"`
}
