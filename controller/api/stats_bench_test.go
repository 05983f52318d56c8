package api

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// BenchmarkReportStats: one host's report of 10,000 members (1,000 groups
// of 10), every member changed, through the handler (decoding, checks,
// the statistics), among 100 hosts that reported them all.
func BenchmarkReportStats(b *testing.B) {
	e := newEnvWith(b, Options{MaxBodyBytes: 64 << 20})
	const groups, hosts = 1000, 100
	for g := 0; g < groups; g++ {
		var m []string
		for i := 0; i < 10; i++ {
			m = append(m, fmt.Sprintf(`{"ip":"10.%d.%d.%d"}`, 1+g/65536, g/256%256, i+1))
		}
		code, _, body := e.do("PUT", fmt.Sprintf("/v1/groups/g%d", g), nil, fmt.Sprintf(`{"name":"g%d","vip":"10.96.%d.%d","ports":[{"protocol":"tcp","port":80}],"members":[%s]}`, g, g/250, g%250+1, strings.Join(m, ",")))
		require.Equal(b, http.StatusOK, code, "%s", body)
	}
	report := func(t int, full bool) string {
		var s strings.Builder
		s.WriteString(`{"interval_s":1,"full":` + strconv.FormatBool(full) + `,"members":[`)
		for g := 0; g < groups; g++ {
			for i := 0; i < 10; i++ {
				if g+i > 0 {
					s.WriteByte(',')
				}
				n := t + i
				fmt.Fprintf(&s, `{"group":"g%d","port":"tcp/80","member":"10.%d.%d.%d","new_connections":%d,"active_connections":%d,"packets_to_member":%d,"bytes_to_member":%d,"packets_from_member":%d,"bytes_from_member":%d}`,
					g, 1+g/65536, g/256%256, i+1, n, n%5, 10*n, 700*n, 8*n, 5000*n)
			}
		}
		s.WriteString("]}")
		return s.String()
	}
	full := report(0, true)
	for h := 0; h < hosts; h++ {
		code, _, body := e.do("PUT", fmt.Sprintf("/v1/hosts/h%d", h), nil, `{"ports":[]}`)
		require.Equal(b, http.StatusOK, code, "%s", body)
		code, _, body = e.do("POST", fmt.Sprintf("/v1/hosts/h%d/stats", h), nil, full)
		require.Equal(b, http.StatusOK, code, "%s", body[:min(len(body), 300)])
	}
	bodies := []string{report(1, false), report(2, false)}
	b.SetBytes(int64(len(bodies[0])))
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		code, _, body := e.do("POST", fmt.Sprintf("/v1/hosts/h%d/stats", i%hosts), nil, bodies[i/hosts%2])
		if code != http.StatusOK {
			b.Fatalf("%d %s", code, body[:min(len(body), 300)])
		}
	}
}
