package store

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"reflect"
	"testing"

	"github.com/ovs-dlb/dlb/lb"
)

// FuzzGroupDocument decodes arbitrary group documents as the API does
// (unknown fields refused) and checks what it accepts: a valid group maps
// to rows and back to a valid group with the same members, ports and
// settings, and a second round trip changes nothing. `make test` runs it
// for a short time.
func FuzzGroupDocument(f *testing.F) {
	for _, s := range []string{
		`{"name":"web","vip":"10.96.0.10","ports":[{"protocol":"tcp","port":80,"target_port":8080}],"members":[{"ip":"10.0.0.11"},{"ip":"10.0.0.12","weight":50,"state":"draining"}]}`,
		`{"name":"v6","vip":"fd00::10","ports":[{"protocol":"udp","port":53},{"protocol":"sctp","port":9}],"members":[{"ip":"fd00::11","port":5353,"mac":"02:00:00:00:00:01"}],"affinity":{"client_ip_timeout_s":86400},"scope":{"iface_ids":["b","a"],"labels":{"k":"v"},"hosts":["h"]}}`,
		`{"name":"nat","vip":"10.96.0.12","mode":"dnat","ports":[{"protocol":"tcp","port":80}],"members":[{"ip":"10.0.0.1"}]}`,
		`{"name":"dsr","vip":"10.96.0.11","mode":"dsr","ports":[{"protocol":"tcp","port":443}],"members":[]}`,
		`{"name":"lc","vip":"10.96.0.13","algorithm":"least-connections","load_view":"local","ports":[{"protocol":"tcp","port":80}],"members":[{"ip":"10.0.0.1","weight":3}]}`,
		`{"name":"hc","vip":"10.96.0.14","ports":[{"protocol":"udp","port":53},{"protocol":"tcp","port":80,"target_port":8080}],"members":[{"ip":"10.0.0.1","health_check_port":9000},{"ip":"10.0.0.2"}],"health_check":{"type":"http","interval":"1.5s","timeout":"500ms","rise":3,"fall":1,"path":"/healthz","host":"x","expect":"200,204","flap_changes":5,"flap_window":"1m","hold":"20s"}}`,
		`{"name":"hu","vip":"10.96.0.15","ports":[{"protocol":"udp","port":53}],"members":[{"ip":"10.0.0.1"}],"health_check":{"type":"udp","udp_silence_ok":true,"payload":"ping"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		var g lb.Group
		if dec.Decode(&g) != nil || g.Validate() != nil {
			return
		}
		got := FromRows(ToRows(g))
		if err := got.Validate(); err != nil {
			t.Fatalf("round trip of a valid group is invalid: %v\nin:  %+v\nout: %+v", err, g, got)
		}
		if len(got.Members) != len(g.Members) || len(got.Ports) != len(g.Ports) || got.Name != g.Name || got.VIP != g.VIP || (got.Mode == lb.ModeDSR) != (g.Mode == lb.ModeDSR) {
			t.Fatalf("round trip lost something:\nin:  %+v\nout: %+v", g, got)
		}
		if got.AlgorithmOf() != g.AlgorithmOf() || got.LoadViewOf() != g.LoadViewOf() {
			t.Fatalf("algorithm lost: %q/%q -> %q/%q", g.AlgorithmOf(), g.LoadViewOf(), got.AlgorithmOf(), got.LoadViewOf())
		}
		if (g.Affinity == nil) != (got.Affinity == nil) {
			t.Fatalf("affinity lost: %+v -> %+v", g.Affinity, got.Affinity)
		}
		if (g.HealthCheck == nil) != (got.HealthCheck == nil) {
			t.Fatalf("health check lost: %+v -> %+v", g.HealthCheck, got.HealthCheck)
		}
		probes := map[string]lb.Probe{}
		for i, m := range g.Members {
			if p := g.ProbeOf(i); p != nil {
				probes[lb.MemberLabel(netip.MustParseAddr(m.IP), m.Port)] = *p
			}
		}
		for i, m := range got.Members {
			if p := got.ProbeOf(i); p != nil && !reflect.DeepEqual(*p, probes[lb.MemberLabel(netip.MustParseAddr(m.IP), m.Port)]) {
				t.Fatalf("member %s probed as %+v, was %+v", m.IP, *p, probes[lb.MemberLabel(netip.MustParseAddr(m.IP), m.Port)])
			}
		}
		if again := FromRows(ToRows(got)); again.Fingerprint() != got.Fingerprint() {
			t.Fatalf("second round trip changed the group:\n%+v\n%+v", got, again)
		}
	})
}
