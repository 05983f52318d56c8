package testbed

import (
	"context"
	"fmt"
)

// silenceTable is the nftables table Silence adds in a VM.
const silenceTable = "dlbtestbed_silence"

// Silence makes a VM drop every IP packet it receives or sends (nftables,
// ahead of conntrack): a hung or cut-off server, which answers nothing at
// all, where a stopped one (StopServices) refuses. Unsilence undoes it.
func (tb *Testbed) Silence(ctx context.Context, vm string) error {
	return tb.nftTable(ctx, vm, silenceTable, " chain in { type filter hook prerouting priority -400; policy drop; }\n"+
		" chain out { type filter hook output priority -400; policy drop; }\n")
}

// Unsilence lets a silenced VM answer again.
func (tb *Testbed) Unsilence(ctx context.Context, vm string) error {
	v := tb.VM(vm)
	if v == nil {
		return fmt.Errorf("no VM %q", vm)
	}
	if _, err := inNetns(ctx, v.Namespace, "nft", "delete", "table", "inet", silenceTable); err != nil {
		return fmt.Errorf("VM %s: unsilence: %w", vm, err)
	}
	return nil
}
