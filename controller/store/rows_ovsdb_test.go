package store

import (
	"context"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/ovn-org/libovsdb/client"
	"github.com/ovn-org/libovsdb/ovsdb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ovs-dlb/dlb/controller/dlbdb"
	"github.com/ovs-dlb/dlb/lb"
	"github.com/ovs-dlb/dlb/ovsdb/server"
	"github.com/ovs-dlb/dlb/testbed"
)

// insert writes a group's rows in one transaction.
func insert(ctx context.Context, t *testing.T, cl client.Client, r Rows) ([]ovsdb.OperationResult, error) {
	var ops []ovsdb.Operation
	for i := range r.Ports {
		o, err := cl.Create(&r.Ports[i])
		require.NoError(t, err)
		ops = append(ops, o...)
	}
	for i := range r.Members {
		o, err := cl.Create(&r.Members[i])
		require.NoError(t, err)
		ops = append(ops, o...)
	}
	o, err := cl.Create(&r.Group)
	require.NoError(t, err)
	ops = append(ops, o...)
	res, err := cl.Transact(ctx, ops...)
	if err != nil {
		return res, err
	}
	_, err = ovsdb.CheckOperationResults(res, ops)
	return res, err
}

// TestRowsInOVSDB: a group's rows go into a real ovsdb-server in one
// transaction and come back, through a monitor, as the same group; the
// server's own column constraints refuse what the model refuses.
func TestRowsInOVSDB(t *testing.T) {
	testbed.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := server.New(server.Options{Dir: t.TempDir(), Schema: dlbdb.SchemaFile})
	require.NoError(t, err)
	require.NoError(t, srv.Start(ctx))
	dbm, err := dlbdb.FullDatabaseModel()
	require.NoError(t, err)
	quiet := logr.Discard()
	cl, err := client.NewOVSDBClient(dbm, client.WithEndpoint(srv.Endpoint()), client.WithLogger(&quiet))
	require.NoError(t, err)
	require.NoError(t, cl.Connect(ctx))
	defer cl.Disconnect()
	_, err = cl.MonitorAll(ctx)
	require.NoError(t, err)

	g := lb.Group{Name: "web", VIP: "10.96.0.10", Affinity: &lb.Affinity{ClientIPTimeoutS: 600},
		Ports:   []lb.PortSpec{{Protocol: "tcp", Port: 80, TargetPort: 8080}},
		Members: []lb.Member{{IP: "10.0.0.11"}, {IP: "10.0.0.12", Weight: intp(300), State: lb.StateDraining}}}
	_, err = insert(ctx, t, cl, ToRows(g))
	require.NoError(t, err)

	var got lb.Group
	require.Eventually(t, func() bool {
		var groups []dlbdb.Group
		if cl.List(ctx, &groups) != nil || len(groups) != 1 {
			return false
		}
		r := Rows{Group: groups[0]}
		for _, id := range groups[0].Ports {
			p := dlbdb.VIPPort{UUID: id}
			if cl.Get(ctx, &p) != nil {
				return false
			}
			r.Ports = append(r.Ports, p)
		}
		for _, id := range groups[0].Members {
			m := dlbdb.Member{UUID: id}
			if cl.Get(ctx, &m) != nil {
				return false
			}
			r.Members = append(r.Members, m)
		}
		got = FromRows(r)
		return true
	}, 5*time.Second, 20*time.Millisecond)
	want := g
	want.Members = []lb.Member{{IP: "10.0.0.11", Weight: intp(lb.DefaultWeight), State: lb.StateActive}, g.Members[1]}
	assert.Equal(t, want, got)

	bad := ToRows(lb.Group{Name: "bad", VIP: "10.96.0.20", Ports: []lb.PortSpec{{Protocol: "tcp", Port: 80}}, Members: []lb.Member{{IP: "10.0.0.13"}}})
	bad.Members[0].Weight = 0
	_, err = insert(ctx, t, cl, bad)
	assert.Error(t, err, "the schema refuses weight 0 too (ovsdb-server: constraint violation)")
	var groups []dlbdb.Group
	require.NoError(t, cl.List(ctx, &groups))
	assert.Len(t, groups, 1, "a refused transaction stores nothing")
}
