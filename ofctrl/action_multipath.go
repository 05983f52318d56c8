package ofctrl

import (
	"fmt"
	"strconv"
)

// Multipath hash fields and algorithms, as ovs-actions(7) names them.
const (
	HashEthSrc = iota
	HashSymmetricL4
	HashSymmetricL3L4
	HashSymmetricL3L4UDP
	HashNWSrc
	HashNWDst
	HashSymmetricL3
)

var hashFieldNames = []string{"eth_src", "symmetric_l4", "symmetric_l3l4", "symmetric_l3l4+udp", "nw_src", "nw_dst", "symmetric_l3"}

// Multipath algorithms.
const (
	AlgModuloN = iota
	AlgHashThreshold
	AlgHRW
	AlgIterHash
)

var mpAlgNames = []string{"modulo_n", "hash_threshold", "hrw", "iter_hash"}

// Multipath hashes fields of the packet and stores a link number
// 0..MaxLink in Dst.
type Multipath struct {
	Fields    uint16
	Basis     uint16
	Algorithm uint16
	MaxLink   uint16
	Arg       uint32
	Dst       Subfield
}

func (a Multipath) String() string {
	return fmt.Sprintf("multipath(%s,%d,%s,%d,%d,%s)", nameOf(hashFieldNames, int(a.Fields)), a.Basis,
		nameOf(mpAlgNames, int(a.Algorithm)), a.MaxLink+1, a.Arg, a.Dst)
}

func nameOf(names []string, i int) string {
	if i < len(names) {
		return names[i]
	}
	return strconv.Itoa(i)
}

func (a Multipath) appendTo(b []byte) []byte {
	b, start := nxHeader(b, nxastMultipath)
	b = put16(b, a.Fields)
	b = put16(b, a.Basis)
	b = zeros(b, 2)
	b = put16(b, a.Algorithm)
	b = put16(b, a.MaxLink)
	b = put32(b, a.Arg)
	b = zeros(b, 2)
	b = put16(b, a.Dst.ofsNbits())
	b = put32(b, a.Dst.Field.header(false))
	return finishAction(b, start)
}

// decodeMultipath decodes nx_action_multipath: fields, basis, pad,
// algorithm, max_link, arg, pad, ofs_nbits, dst.
func decodeMultipath(b []byte) (Action, error) {
	if err := need("multipath", b, 32); err != nil {
		return nil, err
	}
	body := b[nxHeaderLen:]
	dst, err := subfieldFrom(be32(body[18:]), be16(body[16:]))
	if err != nil {
		return nil, fmt.Errorf("multipath: %w", err)
	}
	return Multipath{Fields: be16(body), Basis: be16(body[2:]), Algorithm: be16(body[6:]),
		MaxLink: be16(body[8:]), Arg: be32(body[10:]), Dst: dst}, nil
}
