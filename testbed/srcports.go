package testbed

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Source ports the traffic tool binds: below Linux's ephemeral range, so
// they never meet a port the VM's kernel picks for curl and friends.
const (
	firstSourcePort = 1024
	lastSourcePort  = 32767
)

// sourcePlan says which (address, port) pairs a run uses.
type sourcePlan struct {
	addrs []netip.Addr
	ports []uint16
	first uint64 // index of the first pair
	// wrapped is set when the cursor went round: pairs of an earlier run
	// are used again.
	wrapped bool
}

func (p *sourcePlan) capacity() uint64 { return uint64(len(p.addrs)) * uint64(len(p.ports)) }

// pair returns the i-th pair of the run. Consecutive pairs alternate over
// the addresses.
func (p *sourcePlan) pair(i int) netip.AddrPort {
	idx := (p.first + uint64(i)) % p.capacity()
	a := p.addrs[idx%uint64(len(p.addrs))]
	port := p.ports[idx/uint64(len(p.addrs))]
	return netip.AddrPortFrom(a, port)
}

// reserveSources hands out n source pairs of the VM for the target's
// address family. A cursor in the run directory, locked while it moves,
// makes pairs unique across every run on the testbed until all of the VM's
// pairs are used: OVS 3.1.0's userspace conntrack aborts ovs-vswitchd when
// a NATed 5-tuple comes back while its old entry is in TIME_WAIT.
func (vm *VM) reserveSources(v6 bool, n int) (*sourcePlan, error) {
	plan := &sourcePlan{}
	var all []string
	fam := "4"
	if v6 {
		fam = "6"
		if vm.IP6 != "" {
			all = append(all, vm.IP6)
		}
	} else {
		all = append(all, vm.IP)
	}
	all = append(all, vm.ExtraIPs...)
	for _, s := range all {
		p, err := netip.ParsePrefix(s)
		if err == nil && p.Addr().Is6() == v6 {
			plan.addrs = append(plan.addrs, p.Addr())
		}
	}
	if len(plan.addrs) == 0 {
		return nil, fmt.Errorf("VM %s has no IPv%s address", vm.Name, fam)
	}
	taken := map[uint16]bool{}
	for _, s := range vm.ParsedServices() {
		taken[s.Port] = true
	}
	for p := firstSourcePort; p <= lastSourcePort; p++ {
		if !taken[uint16(p)] {
			plan.ports = append(plan.ports, uint16(p))
		}
	}
	if uint64(n) > plan.capacity() {
		return nil, fmt.Errorf("a run of %d needs more source (address, port) pairs than VM %s has (%d on %d addresses): add extra_ips to the VM",
			n, vm.Name, plan.capacity(), len(plan.addrs))
	}
	f, err := os.OpenFile(filepath.Join(vm.RunDir, "sources"+fam), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("source port cursor: %w", err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		return nil, fmt.Errorf("lock source port cursor: %w", err)
	}
	var buf [8]byte
	if _, err := f.ReadAt(buf[:], 0); err == nil {
		plan.first = binary.BigEndian.Uint64(buf[:]) % plan.capacity()
	} else if !errors.Is(err, io.EOF) {
		return nil, err
	}
	next := plan.first + uint64(n)
	plan.wrapped = next > plan.capacity()
	binary.BigEndian.PutUint64(buf[:], next%plan.capacity())
	if _, err := f.WriteAt(buf[:], 0); err != nil {
		return nil, fmt.Errorf("source port cursor: %w", err)
	}
	return plan, nil
}
