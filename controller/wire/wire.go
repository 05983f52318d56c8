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
	Applied *Applied `json:"applied,omitempty" yaml:"applied,omitempty" readOnly:"true" doc:"On how many hosts the group's latest version is installed (set by the controller)"`
	// Balance is set on every group answer but the agents' watch (they
	// count their own slots), ignored in a body: a GET's answer stays a
	// valid PUT body.
	Balance *Balance `json:"balance,omitempty" yaml:"balance,omitempty" readOnly:"true" doc:"How closely the group's hash slots follow its active members' weights (set by the controller; docs/api.md)"`
	// Balancing is set on GET /v1/groups/{name} of a least-connections
	// group, ignored in a body.
	Balancing *LoadStatus `json:"balancing,omitempty" yaml:"balancing,omitempty" readOnly:"true" doc:"How the hosts balance a least-connections group (set by the controller)"`
	// Health is set on GET /v1/groups/{name} of a health-checked group,
	// ignored in a body: each member's health, which is status, never
	// part of the document.
	Health []MemberHealth `json:"health,omitempty" yaml:"health,omitempty" readOnly:"true" doc:"Each member's health (set by the controller)"`
}

// Balance is how closely the hash slots a host installing the group deals
// (lb.GroupBalance) follow the active members' weights. Where 256 slots
// cannot honour the weights well enough (many members, or very different
// weights), WithinBound is false: the API says so instead of rounding in
// silence. Every field is read-only, so that a body carrying a Balance of
// any shape the answers give is accepted (and the Balance ignored).
type Balance struct {
	Slots             int     `json:"slots" yaml:"slots" readOnly:"true" doc:"Hash slots the active members share (16 to 256, a power of two); 0 without an active member"`
	ActiveMembers     int     `json:"active_members" yaml:"active_members" readOnly:"true" doc:"Members taking new connections (draining and disabled ones take no slot)"`
	WorstShareErrorPP float64 `json:"worst_share_error_pp" yaml:"worst_share_error_pp" readOnly:"true" doc:"The largest distance, in percentage points of new connections, between an active member's share of the slots and its weight's share"`
	WorstMember       string  `json:"worst_member,omitempty" yaml:"worst_member,omitempty" readOnly:"true" doc:"That member: IP, or IP:PORT for a member with its own port (left out when every share is exact)"`
	MaxOverMean       float64 `json:"max_over_mean,omitempty" yaml:"max_over_mean,omitempty" readOnly:"true" doc:"With equal weights only: the most slots a member has over the mean (bound 1.03)"`
	WithinBound       bool    `json:"within_bound" yaml:"within_bound" readOnly:"true" doc:"Every active member's share within max(0.5 points, 3 % of its weight's share) of that share and, with equal weights, max_over_mean at most 1.03; true without an active member"`
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
// version is installed. Its fields are read-only, as Balance's, so that a
// body may carry any of it.
type Applied struct {
	Hosts   int `json:"hosts" readOnly:"true"`
	Applied int `json:"applied" readOnly:"true"`
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

// MemberCount is one member's counters on one host as its agent reports
// them: counted since the agent's flows for the member were made, so they
// only grow while the agent and its switch run (a value below the last
// one means they started again).
type MemberCount struct {
	Group          string `json:"group" maxLength:"63" doc:"The group"`
	Port           string `json:"port" maxLength:"16" doc:"The VIP port: protocol/port, e.g. tcp/80"`
	Member         string `json:"member" maxLength:"64" doc:"The member: its address, or address:port for a member with a port of its own"`
	NewConnections uint64 `json:"new_connections" doc:"New connections the host sent the member through the port"`
	// The packets and bytes (Ethernet frames, as the switch counts them)
	// of those connections, each way.
	PacketsToMember   uint64 `json:"packets_to_member,omitempty" doc:"Packets of those connections to the member"`
	BytesToMember     uint64 `json:"bytes_to_member,omitempty" doc:"Bytes of those connections to the member"`
	PacketsFromMember uint64 `json:"packets_from_member,omitempty" doc:"Packets of those connections from the member"`
	BytesFromMember   uint64 `json:"bytes_from_member,omitempty" doc:"Bytes of those connections from the member"`
	// ActiveConnections is a gauge: the member's connections from the
	// host open now.
	ActiveConnections uint64 `json:"active_connections,omitempty" doc:"The member's connections from the host open now"`
}

// StatsReport is an agent's report of its members' counters (POST
// /v1/hosts/{name}/stats): those that changed since its last report the
// controller took, or all of them (full) at its start and whenever the
// controller asks for everything.
type StatsReport struct {
	Full bool `json:"full,omitempty" doc:"Every member the host counts (a host's first report, or one the controller asked for)"`
	// IntervalS is how often the agent reports: the controller takes a
	// host for stale after three intervals without a report.
	IntervalS float64       `json:"interval_s" minimum:"0.1" maximum:"3600" doc:"Seconds between the agent's reports"`
	Members   []MemberCount `json:"members" maxItems:"262144" doc:"The members' counters"`
	// LoadsSince asks for the loads of the least-connections groups with
	// a global view that changed since an answer's LoadsSeq (0: all).
	LoadsSince uint64 `json:"loads_since,omitempty" doc:"The loads_seq of the last answer whose loads the agent took (0: all of them)"`
	// BalancedAt is when the agent last recomputed its shares of its
	// least-connections groups (unix seconds; 0: it has none).
	BalancedAt float64 `json:"balanced_at,omitempty" doc:"When the host last recomputed its least-connections shares, unix seconds"`
	// Balancing is the host's shares of its least-connections groups that
	// changed since its last report the controller took (all in a full
	// one).
	Balancing []HostBalancing `json:"balancing,omitempty" maxItems:"262144" doc:"The host's shares of its least-connections groups that changed"`
}

// Views a host balances a least-connections group by.
const (
	ViewGlobal  = "global"  // every host's figures
	ViewLocal   = "local"   // the host's own
	ViewWeights = "weights" // fell back to the weights: the global figures are too old
)

// HostBalancing is how a host deals a least-connections group's new
// connections: by which figures, and each member's slots.
type HostBalancing struct {
	Group   string        `json:"group" maxLength:"63"`
	View    string        `json:"view" enum:"global,local,weights" doc:"The figures the shares follow: global (every host's), local (the host's own), weights (a fall-back: the global figures are older than 3 intervals)"`
	Members []MemberSlots `json:"members" maxItems:"256"`
}

// MemberSlots is a member's part of a host's slots.
type MemberSlots struct {
	Member string `json:"member" maxLength:"64"`
	Slots  int    `json:"slots" minimum:"0" maximum:"256" doc:"Of the host's 256 slots for the group"`
}

// StatsAnswer answers a report.
type StatsAnswer struct {
	WantFull bool `json:"want_full,omitempty" doc:"The controller does not have every member of the host (it restarted, or the report was refused): send them all next time"`
	// Loads are the figures least-connections groups with a global view
	// balance by: those that changed since the report's LoadsSince, or
	// all of them (LoadsFull: the agent drops what it has of the others).
	LoadsSeq  uint64      `json:"loads_seq,omitempty" doc:"Ask from this next (loads_since)"`
	LoadsFull bool        `json:"loads_full,omitempty" doc:"The loads are every least-connections group's of the host"`
	Loads     []GroupLoad `json:"loads,omitempty"`
}

// GroupLoad is a least-connections group's members' load over every host.
type GroupLoad struct {
	Group   string       `json:"group"`
	Members []MemberLoad `json:"members"`
}

// MemberLoad is a member's load over every host, summed over the group's
// VIP ports.
type MemberLoad struct {
	Member string `json:"member"`
	// ActiveConnections over the hosts not stale.
	ActiveConnections uint64 `json:"active_connections"`
	// NewConnections over every host: a counter (lower than before after a
	// controller's restart).
	NewConnections uint64 `json:"new_connections"`
}

// GroupStats is a group's members' statistics over every host (GET
// /v1/groups/{name}/stats).
type GroupStats struct {
	Group string `json:"group"`
	// StaleHosts reported before but not in the last three of their
	// intervals: their counts are in the totals (they happened), not in
	// the rates.
	StaleHosts []string      `json:"stale_hosts"`
	Members    []MemberStats `json:"members"`
	// Balancing is, for a least-connections group, each host's shares.
	Balancing []HostShares `json:"balancing,omitempty"`
	// Health is, for a health-checked group, each member's health.
	Health []MemberHealth `json:"health,omitempty"`
}

// HostShares is a host's shares of a least-connections group's new
// connections, as it last reported them.
type HostShares struct {
	Host string `json:"host"`
	View string `json:"view" doc:"global, local, or weights (the host fell back: global figures too old)"`
	// RecomputedAt is the host's last recomputation (of all its groups).
	RecomputedAt *time.Time    `json:"recomputed_at,omitempty"`
	Stale        bool          `json:"stale,omitempty" doc:"The host has not reported for three of its intervals"`
	Members      []MemberShare `json:"members"`
}

// MemberShare is a member's share of a host's new connections.
type MemberShare struct {
	Member string  `json:"member"`
	Slots  int     `json:"slots"`
	Share  float64 `json:"share" doc:"slots / 256"`
}

// LoadStatus is how the hosts balance a least-connections group (a
// group's read-only status).
type LoadStatus struct {
	Hosts          int        `json:"hosts" yaml:"hosts" readOnly:"true" doc:"Hosts that reported shares of the group"`
	Global         int        `json:"global" yaml:"global" readOnly:"true" doc:"Of them, balancing by every host's figures"`
	Local          int        `json:"local" yaml:"local" readOnly:"true" doc:"By their own figures"`
	Weights        int        `json:"weights" yaml:"weights" readOnly:"true" doc:"Fallen back to the weights (global figures too old)"`
	Stale          int        `json:"stale" yaml:"stale" readOnly:"true" doc:"Silent for three of their intervals"`
	LastRecomputed *time.Time `json:"last_recomputed,omitempty" yaml:"last_recomputed,omitempty" readOnly:"true" doc:"The latest recomputation of any host"`
}

// MemberStats is one member on one VIP port, over every host: its
// counters summed over the hosts (active connections over the hosts not
// stale), and their rates.
type MemberStats struct {
	Port   string `json:"port"`
	Member string `json:"member"`
	Counts
	// The rates are the sums of each host's rate between its last two
	// reports of the member, over the hosts not stale.
	NewPerSecond       float64            `json:"new_connections_per_second"`
	BytesToPerSecond   float64            `json:"bytes_to_member_per_second"`
	BytesFromPerSecond float64            `json:"bytes_from_member_per_second"`
	Hosts              []MemberHostCounts `json:"hosts"`
	// History is the member's totals every 2 s or so over the last five
	// minutes, oldest first (asked for with ?history=true).
	History []StatsSample `json:"history,omitempty"`
}

// Counts are a member's counters (since the hosts' counts began) and its
// active connections.
type Counts struct {
	NewConnections    uint64 `json:"new_connections" doc:"New connections"`
	ActiveConnections uint64 `json:"active_connections" doc:"Connections open now (conntrack entries not closed)"`
	PacketsToMember   uint64 `json:"packets_to_member"`
	BytesToMember     uint64 `json:"bytes_to_member" doc:"Bytes (Ethernet frames) of the connections to the member"`
	PacketsFromMember uint64 `json:"packets_from_member"`
	BytesFromMember   uint64 `json:"bytes_from_member" doc:"Bytes (Ethernet frames) of the connections from the member"`
}

// Add is the sum of two counts.
func (c Counts) Add(o Counts) Counts {
	return Counts{c.NewConnections + o.NewConnections, c.ActiveConnections + o.ActiveConnections,
		c.PacketsToMember + o.PacketsToMember, c.BytesToMember + o.BytesToMember,
		c.PacketsFromMember + o.PacketsFromMember, c.BytesFromMember + o.BytesFromMember}
}

// MemberHostCounts is one host's part of a member's statistics.
type MemberHostCounts struct {
	Host string `json:"host"`
	Counts
	AgeS  float64 `json:"age_s" doc:"Seconds since the host's last report of this member's counters"`
	Stale bool    `json:"stale,omitempty"`
}

// StatsSample is a member's totals at a time.
type StatsSample struct {
	At float64 `json:"t" doc:"Unix time, seconds"`
	Counts
}
