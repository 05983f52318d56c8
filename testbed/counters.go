package testbed

import (
	"context"
	"encoding/json"
	"fmt"
)

// IfCounters are the Ethernet frames a VM received and sent, as its
// kernel counts them.
type IfCounters struct {
	RxPackets, RxBytes, TxPackets, TxBytes uint64
}

// acctTable is the nftables table CountL4 adds in a VM.
const acctTable = "dlbtestbed_acct"

// CountL4 starts counting, in a VM's namespace, the TCP and UDP packets it
// receives and sends (nftables counters, ahead of conntrack): what its
// services exchange, without the ARP, neighbour discovery and multicast
// that also reach its interface. Started again, the counters start from 0.
func (tb *Testbed) CountL4(ctx context.Context, vm string) error {
	return tb.nftTable(ctx, vm, acctTable, " chain in { type filter hook input priority -300; meta l4proto { tcp, udp } counter; }\n"+
		" chain out { type filter hook output priority -300; meta l4proto { tcp, udp } counter; }\n")
}

// nftTable puts a VM's nftables table name in place (anew) with chains.
func (tb *Testbed) nftTable(ctx context.Context, vm, name, chains string) error {
	v := tb.VM(vm)
	if v == nil {
		return fmt.Errorf("no VM %q", vm)
	}
	_, _ = inNetns(ctx, v.Namespace, "nft", "delete", "table", "inet", name)
	if _, err := inNetns(ctx, v.Namespace, "nft", "table inet "+name+" {\n"+chains+"}\n"); err != nil {
		return fmt.Errorf("nftables table %s in VM %s: %w", name, vm, err)
	}
	return nil
}

// nftCounters reads the counters of a VM's nftables table, by chain.
func (tb *Testbed) nftCounters(ctx context.Context, vm, name string) (map[string]nftCounter, error) {
	v := tb.VM(vm)
	if v == nil {
		return nil, fmt.Errorf("no VM %q", vm)
	}
	out, err := inNetns(ctx, v.Namespace, "nft", "-j", "list", "table", "inet", name)
	if err != nil {
		return nil, fmt.Errorf("read nftables table %s in VM %s: %w", name, vm, err)
	}
	return parseCounters(out)
}

// L4Counters reads what CountL4 counted since it started, as Ethernet
// frames (the IP packets' length and 14 bytes of Ethernet header each):
// received (Rx) and sent (Tx).
func (tb *Testbed) L4Counters(ctx context.Context, vm string) (IfCounters, error) {
	cs, err := tb.nftCounters(ctx, vm, acctTable)
	if err != nil {
		return IfCounters{}, err
	}
	return l4Counters(cs)
}

// parseL4Counters reads the counters of CountL4's chains from `nft -j
// list table`.
func parseL4Counters(out string) (IfCounters, error) {
	cs, err := parseCounters(out)
	if err != nil {
		return IfCounters{}, err
	}
	return l4Counters(cs)
}

// l4Counters are CountL4's chains' counters as frames: the IP packets
// and an Ethernet header each.
func l4Counters(cs map[string]nftCounter) (IfCounters, error) {
	in, ok1 := cs["in"]
	o, ok2 := cs["out"]
	if !ok1 || !ok2 {
		return IfCounters{}, fmt.Errorf("nft -j: %d counters, want one in chain in and one in chain out", len(cs))
	}
	return IfCounters{RxPackets: in.Packets, RxBytes: in.Bytes + 14*in.Packets, TxPackets: o.Packets, TxBytes: o.Bytes + 14*o.Packets}, nil
}

// nftCounter is a counter's value.
type nftCounter struct{ Packets, Bytes uint64 }

// parseCounters reads `nft -j list table`: the counter of each chain's
// rule (one a chain).
func parseCounters(out string) (map[string]nftCounter, error) {
	var doc struct {
		Nftables []struct {
			Rule *struct {
				Chain string `json:"chain"`
				Expr  []struct {
					Counter *nftCounter `json:"counter"`
				} `json:"expr"`
			} `json:"rule"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		return nil, fmt.Errorf("nft -j: %w", err)
	}
	cs := map[string]nftCounter{}
	for _, o := range doc.Nftables {
		if o.Rule == nil {
			continue
		}
		for _, e := range o.Rule.Expr {
			if e.Counter != nil {
				cs[o.Rule.Chain] = *e.Counter
			}
		}
	}
	return cs, nil
}

// synTable is the nftables table CountSYN adds in a VM.
const synTable = "dlbtestbed_syn"

// CountSYN starts counting, in a VM's namespace, the TCP connections it
// is asked for: SYNs its own conntrack sees as new (a SYN sent again for
// the same connection is not counted again). Started again, the count
// starts from 0.
func (tb *Testbed) CountSYN(ctx context.Context, vm string) error {
	return tb.nftTable(ctx, vm, synTable, " chain in { type filter hook input priority 0; tcp flags & (syn | ack) == syn ct state new counter; }\n")
}

// SYNCount reads what CountSYN counted since it started.
func (tb *Testbed) SYNCount(ctx context.Context, vm string) (uint64, error) {
	cs, err := tb.nftCounters(ctx, vm, synTable)
	if err != nil {
		return 0, err
	}
	if n, ok := cs["in"]; ok {
		return n.Packets, nil
	}
	return 0, fmt.Errorf("nft -j: no counter in chain in")
}
