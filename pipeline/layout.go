package pipeline

import (
	"fmt"
	"hash/fnv"
	"net"

	"github.com/ovs-dlb/dlb/lb"
	of "github.com/ovs-dlb/dlb/ofctrl"
)

// Tables of the pipeline, as offsets from Config.TableBase. docs/pipeline.md
// explains each.
const (
	TableClassify     = iota // which port a packet came from
	TableService             // VIP match, ARP answers; into conntrack
	TableSelect              // after conntrack: new → select group, established → on
	TableToMember            // after DNAT: the member's MAC
	TableReply               // from a member's service port: into conntrack
	TableUnNAT               // replies: the VIP's MAC as source
	TableOutput              // forward as the bridge did before
	TableAffinity            // learned client → member entries (resubmitted to)
	TableMember              // a new connection's member (by index) → its commit
	TableHairpinReply        // a member's reply to itself as client, un-SNATed
	TableHairpin             // back out of the port it came in on
	TableCount               // per member and direction: counts packets and bytes (resubmitted to)
	numTables
)

// TableNames are the names the agent gives the tables in OVSDB.
var TableNames = [numTables]string{
	"DLB_CLASSIFY", "DLB_SERVICE", "DLB_SELECT", "DLB_TO_MEMBER", "DLB_REPLY", "DLB_UNNAT", "DLB_OUTPUT",
	"DLB_AFFINITY", "DLB_MEMBER", "DLB_HAIRPIN_REPLY", "DLB_HAIRPIN", "DLB_COUNT",
}

// Registers.
const (
	// RegService holds the id of the VIP port a packet is for (PortID),
	// from TableService on.
	RegService = 0
	// RegMember holds the index of the member a new connection goes to
	// (1-based, MemberIndex): set by a select group's bucket, or by a
	// learned flow of DLB_AFFINITY for a client stuck to a member (0 when
	// none).
	RegMember = 2
	// RegSrcPort receives a copy of a new affinity connection's source
	// port, which makes every such connection its own datapath flow (see
	// docs/pipeline.md, "Session affinity").
	RegSrcPort = 3
	// RegPortClass marks packets from VM ports (bit 0).
	RegPortClass = 7
)

// Port classes in RegPortClass.
const portClassVM = 1

// Cookie layout: 0xdb | kind (8 bits) | service id (24 bits) | 0 (8 bits) |
// detail (16 bits). "ovs-ofctl dump-flows cookie=0xdb00SSSSSS000000/
// 0xff00ffffff000000" shows every flow of one group.
const (
	CookieMagic     uint64 = 0xdb << 56
	CookieMagicMask uint64 = 0xff << 56
	// CookieServiceMask selects one group's flows (with ServiceCookie).
	CookieServiceMask uint64 = 0xff00ffffff000000
)

// Cookie kinds.
const (
	KindPipeline = 1 // fixed flows of the pipeline
	KindPort     = 2 // a VM port's classification
	KindVIP      = 3 // a group's VIP: service, ARP, un-NAT flows
	// KindMember is a member's commit in DLB_MEMBER, one per VIP port and
	// active member (detail: port index + 1). Its counters are the new
	// connections this host sent to the member on that port.
	KindMember = 4
	KindReply  = 5 // a member service port's reply lookup (detail: port)
	// KindAffinity marks the flows that learn actions add to DLB_AFFINITY
	// (service: the group's id). The agent does not reconcile them: they
	// belong to the switch until they idle out, or until their group
	// leaves or stops asking for affinity.
	KindAffinity = 6
	// KindReject is the flow that refuses new connections to a VIP port
	// with no available member, by a packet-in the agent answers with a
	// TCP reset or an ICMP port unreachable (detail: port index + 1).
	KindReject = 7
	// KindHairpin is a group's source translation for a local member that
	// reached itself through the VIP (detail: the member's ofport).
	KindHairpin = 8
	// KindCountTo and KindCountFrom are a member's counting flows in
	// DLB_COUNT, one per VIP port and member for each direction (detail:
	// port index + 1): the packets and bytes of its connections on that
	// port, to the member and from it.
	KindCountTo   = 9
	KindCountFrom = 10
	// KindProbe is the flows that hand a health probe's answers to the
	// agent (packet-ins), in DLB_CLASSIFY before anything else sees them
	// (probes.go).
	KindProbe = 11
)

// CookieKindMask selects a cookie's magic and kind.
const CookieKindMask uint64 = 0xffff000000000000

// CookieKind returns the kind of a DLB cookie.
func CookieKind(c uint64) uint8 { return uint8(c >> 48) }

// CookieService returns the service id of a DLB cookie.
func CookieService(c uint64) uint32 { return uint32(c>>24) & 0xffffff }

// Cookie builds a cookie.
func Cookie(kind uint8, service uint32, detail uint16) uint64 {
	return CookieMagic | uint64(kind)<<48 | uint64(service&0xffffff)<<24 | uint64(detail)
}

// ServiceCookie is the cookie, under CookieServiceMask, of every flow of a
// service.
func ServiceCookie(service uint32) uint64 { return CookieMagic | uint64(service&0xffffff)<<24 }

// Port ids, in RegService: 0xd | service id (20 bits) | port index (8 bits).
const (
	portIDBase  uint32 = 0xd0000000
	portIDMask  uint32 = 0xf0000000
	serviceBits        = 20
)

// PortID is the id of a service's VIP port, which RegService carries.
func PortID(service uint32, port int) uint32 {
	return portIDBase | (service&(1<<serviceBits-1))<<8 | uint32(port&0xff)
}

// PortCookie is the cookie of kind of a VIP port's flows, from its id.
func PortCookie(kind uint8, port uint32) uint64 {
	return Cookie(kind, port>>8&(1<<serviceBits-1), uint16(port&0xff)+1)
}

// A member's commit writes into its connections' ct_label the member's
// MAC in bits 0..47 (DLB_TO_MEMBER takes the destination from there), the
// VIP port's id in bits 64..95 and the member's index in bits 96..111:
// DLB_COUNT's flows and the agent's reading of conntrack tell a host's
// connections apart by member with them.
const (
	labelMACBits = 48
	labelIDBits  = 48
)

// labelMemberMask is the label's port id and member index bits.
var labelMemberMask = of.Label128{Hi: 1<<labelIDBits - 1}

// MemberLabel is the label a commit of member index of VIP port port
// writes (with the MAC, when known).
func MemberLabel(port uint32, index uint16, mac net.HardwareAddr) of.Label128 {
	l := of.Label128{Hi: uint64(index)<<32 | uint64(port)}
	if mac != nil {
		l.Lo = labelMAC(mac)
	}
	return l
}

// LabelMember reads the VIP port id and member index a connection's label
// holds; ok is false for a label without them (a connection committed by
// an agent before they were written, or none of the DLB's).
func LabelMember(l of.Label128) (port uint32, index uint16, ok bool) {
	port, index = uint32(l.Hi), uint16(l.Hi>>32)
	return port, index, port&portIDMask == portIDBase && index != 0
}

// Group ids: 0xd | 28 bits of a hash of the slots' member indexes (see
// shape.go). Every DLB group is a select group shared by the VIP ports
// whose slots deal the same member indexes.
const (
	GroupIDBase uint32 = 0xd0000000
	GroupIDMask uint32 = 0xf0000000
)

// IsDLBGroup reports whether an OpenFlow group id is one of the DLB's.
func IsDLBGroup(id uint32) bool { return id&GroupIDMask == GroupIDBase }

// ServiceIDs gives each group a stable 20-bit id from a hash of its name;
// collisions are resolved by probing, in name order, so the same set of
// names always gets the same ids.
func ServiceIDs(names []string) map[string]uint32 { return dealIDs(names, serviceBits) }

// Config is the agent's part of the pipeline.
type Config struct {
	// TableBase is the first OpenFlow table the DLB uses.
	TableBase uint8
	// Zone is the conntrack zone of DLB connections.
	Zone uint16
	// MAC answers ARP for VIPs and is the source of replies: a MAC of this
	// host's DLB (it must differ between hosts).
	MAC net.HardwareAddr
	// Buckets forces the number of slots (select-group buckets) of every
	// VIP port (a power of two, 16..256); 0 chooses per group
	// (lb.SlotCount).
	Buckets int
	// NoByteCounts leaves out the members' counting flows in DLB_COUNT
	// (two per VIP port and member): packets and bytes are not counted,
	// new and active connections still are.
	NoByteCounts bool
	// Shared, when set, puts the pipeline on a bridge whose other flows
	// belong to someone else; nil means the DLB owns the bridge.
	Shared *Shared
}

// Shared is where the DLB hooks into a foreign pipeline: one flow of its
// own in EntryTable at EntryPriority sends every packet to the DLB's
// tables, which hand what they do not deliver themselves to ReturnTable
// (by resubmit) instead of NORMAL.
type Shared struct {
	EntryTable    uint8
	EntryPriority uint16
	ReturnTable   uint8
}

// ZoneOf is the conntrack zone of a group's connections on this host
// (lb.ZoneOf with Zone as the base).
func (c Config) ZoneOf(s *lb.Scope) uint16 { return lb.ZoneOf(c.Zone, s) }

// HairpinZone is the conntrack zone of the source translation that lets a
// member reach itself through its group's VIP: the zone after Zone.
func (c Config) HairpinZone() uint16 { return c.Zone + 1 }

// Table returns the OpenFlow table number of a pipeline table.
func (c Config) Table(t int) uint8 { return c.TableBase + uint8(t) }

// TableNameMap is what the agent writes into OVSDB's Flow_Table names.
func (c Config) TableNameMap() map[int]string {
	m := map[int]string{}
	for i, n := range TableNames {
		m[int(c.Table(i))] = n
	}
	return m
}

// Validate checks the configuration.
func (c Config) Validate() error {
	var probs []lb.Problem
	add := func(path, format string, args ...any) {
		probs = append(probs, lb.Problem{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	if int(c.TableBase)+numTables > 254 {
		add("table_base", "%d leaves no room for %d tables (max %d)", c.TableBase, numTables, 254-numTables)
	}
	if len(c.MAC) != 6 || c.MAC[0]&1 == 1 {
		add("mac", "%q is not a unicast Ethernet address", c.MAC)
	}
	if sh := c.Shared; sh != nil {
		first, last := int(c.TableBase), int(c.TableBase)+numTables-1
		if int(sh.EntryTable) >= first {
			add("entry_table", "%d must come before the DLB's tables (%d..%d): the hook uses goto_table", sh.EntryTable, first, last)
		}
		if int(sh.ReturnTable) >= first && int(sh.ReturnTable) <= last {
			add("return_table", "%d is one of the DLB's tables (%d..%d)", sh.ReturnTable, first, last)
		}
	}
	if c.Buckets != 0 && (c.Buckets < 16 || c.Buckets > 256 || c.Buckets&(c.Buckets-1) != 0) {
		add("buckets", "%d: want a power of two from 16 to 256", c.Buckets)
	}
	if len(probs) > 0 {
		return &lb.ValidationError{Problems: probs}
	}
	return nil
}

// HostMAC derives a locally administered MAC for a host's DLB from its id,
// so that each host answers for VIPs with its own address.
func HostMAC(hostID string) net.HardwareAddr {
	h := fnv.New32a()
	h.Write([]byte(hostID))
	s := h.Sum32()
	return net.HardwareAddr{0x0a, 0xdb, byte(s >> 24), byte(s >> 16), byte(s >> 8), byte(s)}
}
