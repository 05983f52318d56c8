package ofctrl

import (
	"fmt"

	of "antrea.io/libOpenflow/openflow15"
)

// SwitchError is an OFPT_ERROR from the switch, with what it refused.
type SwitchError struct {
	Type uint16
	Code uint16
	// Experimenter is set for experimenter errors (Type 0xffff).
	Experimenter uint32
	// Request describes the message the switch refused: the mod we sent
	// when known, else what the error's copy of the message says.
	Request string
	// Mod is the refused mod, when it was one of ours.
	Mod Mod
}

func (e *SwitchError) Error() string {
	return fmt.Sprintf("switch refused %s: %s", e.Request, e.Name())
}

// Name is the OpenFlow name of the error, e.g. "OFPBAC_BAD_OUT_GROUP (type
// 2, code 9)".
func (e *SwitchError) Name() string {
	if e.Type == 0xffff {
		return fmt.Sprintf("experimenter error %d of %#x", e.Code, e.Experimenter)
	}
	name := "unknown error"
	if t, ok := errorNames[e.Type]; ok {
		name = t.prefix + "_" + fmt.Sprint(e.Code)
		if int(e.Code) < len(t.codes) {
			name = t.prefix + "_" + t.codes[e.Code]
		}
	}
	return fmt.Sprintf("%s (type %d, code %d)", name, e.Type, e.Code)
}

// Is lets errors.Is compare a SwitchError with a template of type and code.
func (e *SwitchError) Is(target error) bool {
	t, ok := target.(*SwitchError)
	return ok && t.Type == e.Type && t.Code == e.Code && t.Request == "" && t.Mod == nil
}

// Errors callers test for with errors.Is.
var (
	ErrBadOutGroup   = &SwitchError{Type: 2, Code: 9}
	ErrGroupExists   = &SwitchError{Type: 6, Code: 0}
	ErrUnknownGroup  = &SwitchError{Type: 6, Code: 8}
	ErrBundleFailed  = &SwitchError{Type: 17, Code: 13}
	ErrBadPrereq     = &SwitchError{Type: 4, Code: 9}
	ErrBadTableID    = &SwitchError{Type: 3, Code: 2}
	ErrFlowModFailed = &SwitchError{Type: 5, Code: 0}
)

type errorType struct {
	prefix string
	codes  []string
}

var errorNames = map[uint16]errorType{
	0: {"OFPHFC", []string{"INCOMPATIBLE", "EPERM"}},
	1: {"OFPBRC", []string{"BAD_VERSION", "BAD_TYPE", "BAD_MULTIPART", "BAD_EXPERIMENTER", "BAD_EXP_TYPE", "EPERM", "BAD_LEN",
		"BUFFER_EMPTY", "BUFFER_UNKNOWN", "BAD_TABLE_ID", "IS_SLAVE", "BAD_PORT", "BAD_PACKET", "MULTIPART_BUFFER_OVERFLOW",
		"MULTIPART_REQUEST_TIMEOUT", "MULTIPART_REPLY_TIMEOUT"}},
	2: {"OFPBAC", []string{"BAD_TYPE", "BAD_LEN", "BAD_EXPERIMENTER", "BAD_EXP_TYPE", "BAD_OUT_PORT", "BAD_ARGUMENT", "EPERM",
		"TOO_MANY", "BAD_QUEUE", "BAD_OUT_GROUP", "MATCH_INCONSISTENT", "UNSUPPORTED_ORDER", "BAD_TAG", "BAD_SET_TYPE",
		"BAD_SET_LEN", "BAD_SET_ARGUMENT"}},
	3: {"OFPBIC", []string{"UNKNOWN_INST", "UNSUP_INST", "BAD_TABLE_ID", "UNSUP_METADATA", "UNSUP_METADATA_MASK",
		"BAD_EXPERIMENTER", "BAD_EXP_TYPE", "BAD_LEN", "EPERM"}},
	4: {"OFPBMC", []string{"BAD_TYPE", "BAD_LEN", "BAD_TAG", "BAD_DL_ADDR_MASK", "BAD_NW_ADDR_MASK", "BAD_WILDCARDS",
		"BAD_FIELD", "BAD_VALUE", "BAD_MASK", "BAD_PREREQ", "DUP_FIELD", "EPERM"}},
	5: {"OFPFMFC", []string{"UNKNOWN", "TABLE_FULL", "BAD_TABLE_ID", "OVERLAP", "EPERM", "BAD_TIMEOUT", "BAD_COMMAND", "BAD_FLAGS"}},
	6: {"OFPGMFC", []string{"GROUP_EXISTS", "INVALID_GROUP", "WEIGHT_UNSUPPORTED", "OUT_OF_GROUPS", "OUT_OF_BUCKETS",
		"CHAINING_UNSUPPORTED", "WATCH_UNSUPPORTED", "LOOP", "UNKNOWN_GROUP", "CHAINED_GROUP", "BAD_TYPE", "BAD_COMMAND",
		"BAD_BUCKET", "BAD_WATCH", "EPERM", "UNKNOWN_BUCKET", "BUCKET_EXISTS"}},
	7:  {"OFPPMFC", []string{"BAD_PORT", "BAD_HW_ADDR", "BAD_CONFIG", "BAD_ADVERTISE", "EPERM"}},
	8:  {"OFPTMFC", []string{"BAD_TABLE", "BAD_CONFIG", "EPERM"}},
	10: {"OFPSCFC", []string{"BAD_FLAGS", "BAD_LEN", "EPERM"}},
	11: {"OFPRRFC", []string{"STALE", "UNSUP", "BAD_ROLE"}},
	12: {"OFPMMFC", []string{"UNKNOWN", "METER_EXISTS", "INVALID_METER", "UNKNOWN_METER", "BAD_COMMAND", "BAD_FLAGS",
		"BAD_RATE", "BAD_BURST", "BAD_BAND", "BAD_BAND_VALUE", "OUT_OF_METERS", "OUT_OF_BANDS"}},
	14: {"OFPBPC", []string{"BAD_TYPE", "BAD_LEN", "BAD_VALUE", "TOO_MANY", "DUP_TYPE", "BAD_EXPERIMENTER", "BAD_EXP_TYPE",
		"BAD_EXP_VALUE", "EPERM"}},
	17: {"OFPBFC", []string{"UNKNOWN", "EPERM", "BAD_ID", "BUNDLE_EXIST", "BUNDLE_CLOSED", "OUT_OF_BUNDLES", "BAD_TYPE",
		"BAD_FLAGS", "MSG_BAD_LEN", "MSG_BAD_XID", "MSG_UNSUP", "MSG_CONFLICT", "MSG_TOO_MANY", "MSG_FAILED", "TIMEOUT",
		"BUNDLE_IN_PROGRESS"}},
}

var messageNames = map[uint8]string{
	of.Type_Hello: "HELLO", of.Type_EchoRequest: "ECHO_REQUEST", of.Type_FeaturesRequest: "FEATURES_REQUEST",
	of.Type_PacketOut: "PACKET_OUT", of.Type_FlowMod: "FLOW_MOD", of.Type_GroupMod: "GROUP_MOD",
	of.Type_MultiPartRequest: "MULTIPART_REQUEST", of.Type_BarrierRequest: "BARRIER_REQUEST",
	of.Type_BundleControl: "BUNDLE_CONTROL", of.Type_BundleAddMessage: "BUNDLE_ADD_MESSAGE", of.Type_Experimenter: "EXPERIMENTER",
}

// decodeError turns an OFPT_ERROR into a SwitchError. mod is the refused
// message when the caller knows it.
func decodeError(msg []byte, mod Mod) *SwitchError {
	e := &SwitchError{Mod: mod}
	if len(msg) < 12 {
		e.Request = "a message (error too short)"
		return e
	}
	e.Type, e.Code = be16(msg[8:]), be16(msg[10:])
	data := msg[12:]
	if e.Type == 0xffff && len(data) >= 6 {
		e.Code, e.Experimenter = be16(data), be32(data[2:])
		data = data[6:]
	}
	if mod != nil {
		e.Request = mod.String()
	} else {
		e.Request = describeMessage(data)
	}
	return e
}

// describeMessage names a message from the (possibly truncated) copy the
// switch sends back in an error: its type and the fields that identify it.
func describeMessage(b []byte) string {
	if len(b) < 8 {
		return "a message"
	}
	typ := b[1]
	name, ok := messageNames[typ]
	if !ok {
		name = fmt.Sprintf("message type %d", typ)
	}
	s := fmt.Sprintf("%s (xid %d)", name, be32(b[4:]))
	switch typ {
	case of.Type_FlowMod:
		if len(b) >= 32 {
			s += fmt.Sprintf(" %s table=%d cookie=%#x priority=%d", FlowCommand(b[25]), b[24], be64(b[8:]), be16(b[30:]))
		}
	case of.Type_GroupMod:
		if len(b) >= 16 {
			s += fmt.Sprintf(" %s group_id=%d", GroupCommand(be16(b[8:])), be32(b[12:]))
		}
	case of.Type_BundleAddMessage:
		if len(b) >= 24 {
			s += fmt.Sprintf(" bundle_id=%d of %s", be32(b[8:]), describeMessage(b[16:]))
		}
	case of.Type_BundleControl:
		if len(b) >= 14 {
			s += fmt.Sprintf(" bundle_id=%d type=%d", be32(b[8:]), be16(b[12:]))
		}
	}
	return s
}
