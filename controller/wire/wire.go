// Package wire holds the JSON documents of the controller's REST API,
// shared by the server (controller/api) and its clients (dlbctl).
//
// It owns: the documents' shapes. It must not touch: I/O of any kind.
package wire

import "github.com/ovs-dlb/dlb/lb"

// Group is the group document (the lb model) with the indexes of the
// group's creation and last change.
type Group struct {
	lb.Group    `yaml:",inline"`
	CreateIndex uint64 `json:"create_index,omitempty" yaml:"create_index,omitempty" doc:"Index of the group's creation (set by the controller)"`
	ModifyIndex uint64 `json:"modify_index,omitempty" yaml:"modify_index,omitempty" doc:"Index of the group's last change. In a PUT or PATCH body it acts as If-Match."`
}

// GroupList is every group, by name, at an index.
type GroupList struct {
	Index  uint64  `json:"index" doc:"Index of the last change to any group"`
	Groups []Group `json:"groups"`
}

// Host is a hypervisor whose agent registered with the controller.
type Host struct {
	Name        string            `json:"name"`
	Address     string            `json:"address,omitempty"`
	ExternalIDs map[string]string `json:"external_ids,omitempty"`
	CreateIndex uint64            `json:"create_index"`
	ModifyIndex uint64            `json:"modify_index"`
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
