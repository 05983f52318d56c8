package ofctrl

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	of "antrea.io/libOpenflow/openflow15"
	"antrea.io/libOpenflow/util"
)

// GroupType is an OpenFlow group type.
type GroupType uint8

// Group types.
const (
	GroupAll      GroupType = of.GT_ALL
	GroupSelect   GroupType = of.GT_SELECT
	GroupIndirect GroupType = of.GT_INDIRECT
	GroupFF       GroupType = of.GT_FF
)

var groupTypeNames = map[GroupType]string{GroupAll: "all", GroupSelect: "select", GroupIndirect: "indirect", GroupFF: "ff"}

func (t GroupType) String() string { return groupTypeNames[t] }

// Group is an OpenFlow group with its buckets.
type Group struct {
	ID      uint32
	Type    GroupType
	Buckets []Bucket
	// Slots, when Buckets is empty, describe the buckets compactly: bucket
	// i has id i, weight 1 and the actions SlotActions[Slots[i]]. A group of
	// many buckets over few action lists (a select group dealing hash slots
	// to members) takes a fraction of the memory; it renders and encodes
	// exactly as the buckets it stands for. Use Bucket(i) and NumBuckets to
	// read either form.
	Slots       []uint16
	SlotActions [][]Action
	// Selection is OVS's selection method for select groups ("hash" or
	// "dp_hash"); nil leaves OVS's default.
	Selection *Selection
}

// Selection is OVS's ntr_selection_method group property.
type Selection struct {
	Method string
	Param  uint64
	// Fields are hashed by the "hash" method.
	Fields []*Field
}

// Bucket is one bucket of a group.
type Bucket struct {
	ID uint32
	// Weight matters for select groups; 0 means OVS's default, 1.
	Weight uint16
	// WatchPort, when non-zero, makes a fast-failover bucket live only
	// while the port is up.
	WatchPort uint32
	Actions   []Action
}

// NewGroup starts a group.
func NewGroup(id uint32, typ GroupType) *Group { return &Group{ID: id, Type: typ} }

// WithSelection sets the selection method of a select group.
func (g *Group) WithSelection(method string, param uint64, fields ...*Field) *Group {
	g.Selection = &Selection{Method: method, Param: param, Fields: fields}
	return g
}

// Bucket appends a bucket.
func (g *Group) Bucket(id uint32, weight uint16, actions ...Action) *Group {
	g.Buckets = append(g.Buckets, Bucket{ID: id, Weight: weight, Actions: actions})
	return g
}

// NumBuckets is the number of buckets, in either form.
func (g *Group) NumBuckets() int {
	if len(g.Buckets) == 0 {
		return len(g.Slots)
	}
	return len(g.Buckets)
}

// BucketAt returns bucket i, in either form.
func (g *Group) BucketAt(i int) Bucket {
	if len(g.Buckets) == 0 {
		return Bucket{ID: uint32(i), Weight: 1, Actions: g.SlotActions[g.Slots[i]]}
	}
	return g.Buckets[i]
}

// String renders the group as "ovs-ofctl dump-groups" prints it (without
// the leading space).
func (g *Group) String() string {
	var s strings.Builder
	fmt.Fprintf(&s, "group_id=%d,type=%s", g.ID, g.Type)
	if sel := g.Selection; sel != nil {
		fmt.Fprintf(&s, ",selection_method=%s", sel.Method)
		if sel.Param != 0 {
			fmt.Fprintf(&s, ",selection_method_param=%d", sel.Param)
		}
		if len(sel.Fields) > 0 {
			names := make([]string, len(sel.Fields))
			for i, f := range sel.Fields {
				names[i] = f.name
			}
			if len(names) == 1 {
				fmt.Fprintf(&s, ",fields=%s", names[0])
			} else {
				fmt.Fprintf(&s, ",fields(%s)", strings.Join(names, ","))
			}
		}
	}
	for i := 0; i < g.NumBuckets(); i++ {
		b := g.BucketAt(i)
		fmt.Fprintf(&s, ",bucket=bucket_id:%d", b.ID)
		if g.Type == GroupSelect && b.weight() != 1 {
			fmt.Fprintf(&s, ",weight:%d", b.weight())
		}
		if b.WatchPort != 0 && b.WatchPort != PortAny {
			fmt.Fprintf(&s, ",watch_port:%s", formatPort(b.WatchPort, false))
		}
		s.WriteString(",actions=" + formatActions(b.Actions))
	}
	return s.String()
}

func (b Bucket) weight() uint16 {
	if b.Weight == 0 {
		return 1
	}
	return b.Weight
}

// Equal reports whether two groups render the same.
func (g *Group) Equal(o *Group) bool { return g.String() == o.String() }

// GroupCommand is what a group mod does.
type GroupCommand uint16

// Group mod commands (OpenFlow 1.5).
const (
	GroupAdd           GroupCommand = of.OFPGC_ADD
	GroupModify        GroupCommand = of.OFPGC_MODIFY
	GroupDelete        GroupCommand = of.OFPGC_DELETE
	GroupInsertBuckets GroupCommand = 3
	GroupRemoveBuckets GroupCommand = 5
)

var groupCommandNames = map[GroupCommand]string{GroupAdd: "ADD", GroupModify: "MODIFY", GroupDelete: "DELETE", GroupInsertBuckets: "INSERT_BUCKET", GroupRemoveBuckets: "REMOVE_BUCKET"}

func (c GroupCommand) String() string { return groupCommandNames[c] }

// Special bucket ids for insert and remove.
const (
	BucketFirst uint32 = 0xfffffffd
	BucketLast  uint32 = 0xfffffffe
	BucketAll   uint32 = 0xffffffff
)

// GroupAll as a group id deletes every group.
const GroupIDAll uint32 = 0xfffffffc

// GroupMod adds, modifies or deletes a group, or inserts or removes
// buckets of one.
type GroupMod struct {
	Command GroupCommand
	Group   *Group
	// BucketID is where InsertBuckets inserts (BucketFirst, BucketLast or
	// before a bucket id) or which bucket RemoveBuckets removes.
	BucketID uint32
}

// Add returns a mod that adds the group.
func (g *Group) Add() GroupMod { return GroupMod{Command: GroupAdd, Group: g, BucketID: BucketAll} }

// Modify returns a mod that replaces the group's type and buckets.
func (g *Group) Modify() GroupMod {
	return GroupMod{Command: GroupModify, Group: g, BucketID: BucketAll}
}

// Delete returns a mod that deletes the group.
func (g *Group) Delete() GroupMod { return DeleteGroup(g.ID) }

// DeleteGroup deletes a group by id (GroupIDAll for every group).
func DeleteGroup(id uint32) GroupMod {
	return GroupMod{Command: GroupDelete, Group: &Group{ID: id}, BucketID: BucketAll}
}

// InsertBuckets inserts g's buckets into the existing group g.ID at pos.
// (OVS 3.1 mis-handles this for dp_hash groups; send Modify instead.)
func InsertBuckets(g *Group, pos uint32) GroupMod {
	return GroupMod{Command: GroupInsertBuckets, Group: g, BucketID: pos}
}

// RemoveBucket removes one bucket (or BucketAll) from a group.
func RemoveBucket(groupID, bucketID uint32) GroupMod {
	return GroupMod{Command: GroupRemoveBuckets, Group: &Group{ID: groupID}, BucketID: bucketID}
}

func (m GroupMod) String() string {
	s := fmt.Sprintf("group_mod %s group_id=%d", m.Command, m.Group.ID)
	switch m.Command {
	case GroupAdd, GroupModify:
		return s + ": " + m.Group.String()
	case GroupRemoveBuckets, GroupInsertBuckets:
		return s + " command_bucket_id=" + strconv.FormatUint(uint64(m.BucketID), 10)
	}
	return s
}

func (m GroupMod) appendTo(b []byte, xid uint32) []byte {
	g := m.Group
	b, start := appendHeader(b, of.Type_GroupMod, xid)
	b = put16(b, uint16(m.Command))
	b = append(b, uint8(g.Type), 0)
	b = put32(b, g.ID)
	lenAt := len(b)
	b = put16(b, 0)
	b = zeros(b, 2)
	b = put32(b, m.BucketID)
	if m.Command != GroupDelete && m.Command != GroupRemoveBuckets {
		bstart := len(b)
		for i := 0; i < g.NumBuckets(); i++ {
			b = g.BucketAt(i).appendTo(b, g.Type)
		}
		binary.BigEndian.PutUint16(b[lenAt:], uint16(len(b)-bstart))
		if g.Selection != nil && m.Command != GroupInsertBuckets {
			b = g.Selection.appendTo(b)
		}
	}
	return finishMessage(b, start)
}

func (bk Bucket) appendTo(b []byte, t GroupType) []byte {
	start := len(b)
	b = put16(b, 0)
	b = put16(b, 0)
	b = put32(b, bk.ID)
	b = appendActions(b, bk.Actions)
	binary.BigEndian.PutUint16(b[start+2:], uint16(len(b)-start-8))
	if t == GroupSelect {
		b = put16(b, 0) // OFPGBPT15_WEIGHT
		b = put16(b, 8)
		b = put16(b, bk.weight())
		b = zeros(b, 2)
	}
	if bk.WatchPort != 0 && bk.WatchPort != PortAny {
		b = put16(b, 1) // OFPGBPT15_WATCH_PORT
		b = put16(b, 8)
		b = put32(b, bk.WatchPort)
	}
	binary.BigEndian.PutUint16(b[start:], uint16(len(b)-start))
	return b
}

func (s *Selection) appendTo(b []byte) []byte {
	fields := make([]of.MatchField, len(s.Fields))
	for i, f := range s.Fields {
		// Each field carries the mask of the bits to hash: all of them.
		ones := make([]byte, f.bytes)
		for j := range ones {
			ones[j] = 0xff
		}
		fields[i] = of.MatchField{Class: f.class, Field: f.code, Length: uint8(f.bytes), Value: util.NewBuffer(ones)}
	}
	prop := of.NewNTRSelectionMethod(of.NTRSelectionMethodType(s.Method), s.Param, fields...)
	data, err := prop.MarshalBinary()
	if err != nil {
		// Only an over-long method name fails, which Validate refuses.
		panic(fmt.Sprintf("ofctrl: selection method: %v", err))
	}
	return append(b, data...)
}

// decodeGroupDesc reads one ofp_group_desc entry (OpenFlow 1.5).
func decodeGroupDesc(b []byte) (*Group, error) {
	if len(b) < 16 {
		return nil, fmt.Errorf("group desc of %d bytes: %w", len(b), errShort)
	}
	g := &Group{Type: GroupType(b[2]), ID: be32(b[4:])}
	blen := int(be16(b[8:]))
	if 16+blen > len(b) {
		return nil, fmt.Errorf("group %d: bucket array of %d bytes in %d", g.ID, blen, len(b))
	}
	p := b[16 : 16+blen]
	for len(p) >= 8 {
		n, alen := int(be16(p)), int(be16(p[2:]))
		if n < 8+alen || n > len(p) {
			return nil, fmt.Errorf("group %d: bad bucket length", g.ID)
		}
		bk := Bucket{ID: be32(p[4:])}
		as, err := decodeActions(p[8 : 8+alen])
		if err != nil {
			return nil, fmt.Errorf("group %d bucket %d: %w", g.ID, bk.ID, err)
		}
		bk.Actions = as
		props := p[8+alen : n]
		for len(props) >= 4 {
			typ, l := be16(props), int(be16(props[2:]))
			if l < 4 || l > len(props) {
				break
			}
			switch {
			case typ == 0 && l >= 6:
				bk.Weight = be16(props[4:])
			case typ == 1 && l >= 8:
				bk.WatchPort = be32(props[4:])
			case typ <= 1:
				return nil, fmt.Errorf("group %d bucket %d: property %d of %d bytes", g.ID, bk.ID, typ, l)
			}
			props = props[min(pad8(l), len(props)):]
		}
		g.Buckets = append(g.Buckets, bk)
		p = p[n:]
	}
	props := b[16+blen:]
	for len(props) >= 4 {
		typ, l := be16(props), int(be16(props[2:]))
		if l < 4 || l > len(props) {
			break
		}
		if typ == 0xffff && l >= 40 && be32(props[4:]) == 0x0000154d && be32(props[8:]) == 1 {
			sel := &Selection{Method: string(bytes.TrimRight(props[16:32], "\x00")), Param: be64(props[32:])}
			for f := props[40:l]; len(f) >= 4; {
				h := be32(f)
				if h == 0 {
					break
				}
				if fld := fieldByHeader(h); fld != nil {
					sel.Fields = append(sel.Fields, fld)
				}
				f = f[min(4+int(h&0xff), len(f)):]
			}
			g.Selection = sel
		}
		props = props[min(pad8(l), len(props)):]
	}
	return g, nil
}
