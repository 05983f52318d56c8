package ovsdb

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/ovn-org/libovsdb/client"
	"github.com/ovn-org/libovsdb/model"
	ovsdbproto "github.com/ovn-org/libovsdb/ovsdb"

	"github.com/ovs-dlb/dlb/ovsdb/vswitchd"
)

// KeyManaged marks, in external_ids, the rows the DLB owns: a bridge it
// created or was told to own, and the Flow_Table rows that name its
// tables. The DLB changes nothing else on a bridge it does not own except
// adding OpenFlow15 to its protocols.
const KeyManaged = "ovs-dlb-managed"

// BridgeConfig says how the agent wants its bridge.
type BridgeConfig struct {
	Name string
	// Create makes the bridge when it does not exist.
	Create bool
	// DatapathType of a bridge the DLB creates: "netdev" for the userspace
	// datapath, "" or "system" for the kernel's.
	DatapathType string
	// Own makes the bridge the DLB's: fail_mode=secure, so that it forwards
	// nothing the DLB did not install when no controller is connected, and
	// external_ids:ovs-dlb-managed=true.
	Own bool
	// Tables names the DLB's OpenFlow tables, so that "ovs-ofctl --names"
	// shows them by name.
	Tables map[int]string
}

// ErrNoBridge says the configured bridge does not exist.
var ErrNoBridge = errors.New("bridge does not exist")

// PrepareReport says what PrepareBridge did.
type PrepareReport struct {
	// Changed lists the changes made; empty on a prepared bridge.
	Changed []string
	// Notes lists what was left alone because the DLB does not own it.
	Notes []string
}

// PrepareBridge makes the bridge as configured, idempotently, in one
// transaction.
func (c *Client) PrepareBridge(ctx context.Context, cfg BridgeConfig) (*PrepareReport, error) {
	cl, err := c.current()
	if err != nil {
		return nil, err
	}
	var bridges []vswitchd.Bridge
	if err := cl.WhereCache(func(b *vswitchd.Bridge) bool { return b.Name == cfg.Name }).List(ctx, &bridges); err != nil {
		return nil, err
	}
	var ops []ovsdbproto.Operation
	rep := &PrepareReport{}
	if len(bridges) == 0 {
		if !cfg.Create {
			return nil, fmt.Errorf("%w: %q is not in the OVSDB at %s: create it (ovs-vsctl add-br %s) or let the agent create it",
				ErrNoBridge, cfg.Name, c.opts.Endpoint, cfg.Name)
		}
		ops, err = createBridgeOps(cl, cfg)
		rep.Changed = append(rep.Changed, fmt.Sprintf("created bridge %s (datapath_type=%q)", cfg.Name, cfg.DatapathType))
	} else {
		ops, err = updateBridgeOps(ctx, cl, &bridges[0], cfg, rep)
	}
	if err != nil {
		return nil, fmt.Errorf("prepare bridge %s: %w", cfg.Name, err)
	}
	if err := c.transact(ctx, ops); err != nil {
		return nil, fmt.Errorf("prepare bridge %s: %w", cfg.Name, err)
	}
	return rep, nil
}

func sortedIDs(tables map[int]string) []int {
	ids := make([]int, 0, len(tables))
	for id := range tables {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	return ids
}

func createBridgeOps(cl client.Client, cfg BridgeConfig) ([]ovsdbproto.Operation, error) {
	var models []model.Model
	flowTables := map[int]string{}
	for _, id := range sortedIDs(cfg.Tables) {
		name := cfg.Tables[id]
		ref := fmt.Sprintf("table%d", id)
		models = append(models, &vswitchd.FlowTable{UUID: ref, Name: &name, ExternalIDs: map[string]string{KeyManaged: "true"}})
		flowTables[id] = ref
	}
	iface := &vswitchd.Interface{UUID: "iface", Name: cfg.Name, Type: "internal"}
	port := &vswitchd.Port{UUID: "port", Name: cfg.Name, Interfaces: []string{"iface"}}
	br := &vswitchd.Bridge{UUID: "bridge", Name: cfg.Name, Ports: []string{"port"}, DatapathType: cfg.DatapathType,
		FlowTables: flowTables, ExternalIDs: map[string]string{KeyManaged: "true"}}
	if cfg.Own {
		secure := vswitchd.BridgeFailModeSecure
		br.FailMode = &secure
	}
	models = append(models, iface, port, br)
	ops, err := cl.Create(models...)
	if err != nil {
		return nil, err
	}
	ovs := &vswitchd.OpenvSwitch{}
	mut, err := cl.WhereCache(func(*vswitchd.OpenvSwitch) bool { return true }).Mutate(ovs, model.Mutation{
		Field: &ovs.Bridges, Mutator: ovsdbproto.MutateOperationInsert, Value: []string{"bridge"},
	})
	if err != nil {
		return nil, err
	}
	if len(mut) == 0 {
		return nil, errors.New("the database has no Open_vSwitch row: was it initialised (ovs-vsctl init)?")
	}
	return append(ops, mut...), nil
}

func updateBridgeOps(ctx context.Context, cl client.Client, br *vswitchd.Bridge, cfg BridgeConfig, rep *PrepareReport) ([]ovsdbproto.Operation, error) {
	var ops []ovsdbproto.Operation
	add := func(o []ovsdbproto.Operation, err error, change string) error {
		if err != nil {
			return err
		}
		ops = append(ops, o...)
		rep.Changed = append(rep.Changed, change)
		return nil
	}
	where := cl.Where(&vswitchd.Bridge{UUID: br.UUID})
	// An empty protocols column enables every version, 1.5 included.
	if len(br.Protocols) > 0 && !slices.Contains(br.Protocols, vswitchd.BridgeProtocolsOpenflow15) {
		o, err := where.Mutate(br, model.Mutation{Field: &br.Protocols, Mutator: ovsdbproto.MutateOperationInsert,
			Value: []vswitchd.BridgeProtocols{vswitchd.BridgeProtocolsOpenflow15}})
		if err := add(o, err, "added OpenFlow15 to protocols"); err != nil {
			return nil, err
		}
	}
	if cfg.Own {
		if br.FailMode == nil || *br.FailMode != vswitchd.BridgeFailModeSecure {
			secure := vswitchd.BridgeFailModeSecure
			upd := &vswitchd.Bridge{FailMode: &secure}
			o, err := where.Update(upd, &upd.FailMode)
			if err := add(o, err, "set fail_mode=secure"); err != nil {
				return nil, err
			}
		}
		if br.ExternalIDs[KeyManaged] != "true" {
			o, err := where.Mutate(br, model.Mutation{Field: &br.ExternalIDs, Mutator: ovsdbproto.MutateOperationInsert,
				Value: map[string]string{KeyManaged: "true"}})
			if err := add(o, err, "marked external_ids:"+KeyManaged+"=true"); err != nil {
				return nil, err
			}
		}
	}
	// Flow table names: create the missing ones, rename ours, leave the
	// ones someone else named alone, and drop ours that are no longer used.
	newTables := map[int]string{}
	var dropTables []int
	for _, id := range sortedIDs(cfg.Tables) {
		name := cfg.Tables[id]
		uuid, ok := br.FlowTables[id]
		if !ok {
			ref := fmt.Sprintf("table%d", id)
			o, err := cl.Create(&vswitchd.FlowTable{UUID: ref, Name: &name, ExternalIDs: map[string]string{KeyManaged: "true"}})
			if err := add(o, err, fmt.Sprintf("named table %d %q", id, name)); err != nil {
				return nil, err
			}
			newTables[id] = ref
			continue
		}
		ft := &vswitchd.FlowTable{UUID: uuid}
		if err := cl.Get(ctx, ft); err != nil {
			return nil, fmt.Errorf("flow table %d: %w", id, err)
		}
		if ft.ExternalIDs[KeyManaged] != "true" {
			rep.Notes = append(rep.Notes, fmt.Sprintf("left the name of table %d alone: its Flow_Table row is not the DLB's", id))
			continue
		}
		if ft.Name == nil || *ft.Name != name {
			upd := &vswitchd.FlowTable{Name: &name}
			o, err := cl.Where(&vswitchd.FlowTable{UUID: uuid}).Update(upd, &upd.Name)
			if err := add(o, err, fmt.Sprintf("renamed table %d %q", id, name)); err != nil {
				return nil, err
			}
		}
	}
	for id, uuid := range br.FlowTables {
		if _, want := cfg.Tables[id]; want {
			continue
		}
		ft := &vswitchd.FlowTable{UUID: uuid}
		if cl.Get(ctx, ft) == nil && ft.ExternalIDs[KeyManaged] == "true" {
			dropTables = append(dropTables, id)
		}
	}
	if len(newTables) > 0 {
		o, err := where.Mutate(br, model.Mutation{Field: &br.FlowTables, Mutator: ovsdbproto.MutateOperationInsert, Value: newTables})
		if err != nil {
			return nil, err
		}
		ops = append(ops, o...)
	}
	if len(dropTables) > 0 {
		sort.Ints(dropTables)
		o, err := where.Mutate(br, model.Mutation{Field: &br.FlowTables, Mutator: ovsdbproto.MutateOperationDelete, Value: dropTables})
		if err := add(o, err, fmt.Sprintf("dropped names of tables %v", dropTables)); err != nil {
			return nil, err
		}
	}
	return ops, nil
}
