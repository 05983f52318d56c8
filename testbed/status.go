package testbed

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Status describes a running testbed.
type Status struct {
	Name    string       `json:"name"`
	Prefix  string       `json:"prefix"`
	RunDir  string       `json:"run_dir"`
	Created time.Time    `json:"created"`
	Hosts   []HostStatus `json:"hosts"`
}

// HostStatus describes one host.
type HostStatus struct {
	Name          string     `json:"name"`
	Namespace     string     `json:"namespace"`
	OpenFlow      string     `json:"openflow"`
	OVSDB         string     `json:"ovsdb"`
	VSwitchdPID   int        `json:"ovs_vswitchd_pid"`
	VSwitchdAlive bool       `json:"ovs_vswitchd_alive"`
	OVSDBAlive    bool       `json:"ovsdb_server_alive"`
	Problem       string     `json:"problem,omitempty"`
	VMs           []VMStatus `json:"vms"`
}

// VMStatus describes one VM.
type VMStatus struct {
	Name          string   `json:"name"`
	Namespace     string   `json:"namespace"`
	IP            string   `json:"ip"`
	IP6           string   `json:"ip6,omitempty"`
	ExtraIPs      []string `json:"extra_ips,omitempty"`
	MAC           string   `json:"mac"`
	OFPort        string   `json:"ofport,omitempty"`
	Services      []string `json:"services,omitempty"`
	ServicesAlive bool     `json:"services_alive"`
}

// Status reads the state of every host and VM.
func (tb *Testbed) Status(ctx context.Context) *Status {
	st := &Status{Name: tb.Name, Prefix: tb.Prefix, RunDir: tb.RunDir, Created: tb.st.Created}
	for i, h := range tb.hosts {
		hs := HostStatus{Name: h.Name, Namespace: h.Namespace, OpenFlow: h.OpenFlowTarget(), OVSDB: h.OVSDBSocket()}
		hs.VSwitchdPID, hs.VSwitchdAlive = h.VSwitchdPID()
		if pid, err := readPID(h.pidfile("ovsdb-server")); err == nil {
			hs.OVSDBAlive = alive(pid)
		}
		if err := h.checkVSwitchd(); err != nil {
			hs.Problem = err.Error()
		}
		ofports := map[string]string{}
		if hs.OVSDBAlive {
			ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			out, err := h.VSCtl(ctx, "--format=csv", "--no-headings", "--columns=name,ofport", "list", "Interface")
			cancel()
			if err == nil {
				for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
					if name, port, ok := strings.Cut(l, ","); ok {
						ofports[strings.Trim(name, `"`)] = port
					}
				}
			}
		}
		for _, vs := range tb.Topology.Hosts[i].VMs {
			vm := tb.vms[vs.Name]
			v := VMStatus{Name: vm.Name, Namespace: vm.Namespace, IP: vm.IP, IP6: vm.IP6, ExtraIPs: vm.ExtraIPs,
				MAC: vm.HardwareAddr(), OFPort: ofports[vm.Name], Services: vm.Services}
			if pid, err := readPID(vm.servicePidfile()); err == nil {
				v.ServicesAlive = alive(pid)
			}
			hs.VMs = append(hs.VMs, v)
		}
		st.Hosts = append(st.Hosts, hs)
	}
	return st
}

// WriteTable prints the status for people.
func (s *Status) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "testbed %q (prefix %s, run dir %s)\n\n", s.Name, s.Prefix, s.RunDir)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tNAMESPACE\tOVS-VSWITCHD\tOPENFLOW\tOVSDB")
	for _, h := range s.Hosts {
		state := fmt.Sprintf("pid %d", h.VSwitchdPID)
		if !h.VSwitchdAlive {
			state = "DEAD"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", h.Name, h.Namespace, state, h.OpenFlow, h.OVSDB)
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VM\tHOST\tOFPORT\tIPV4\tIPV6\tMAC\tSERVICES")
	for _, h := range s.Hosts {
		for _, v := range h.VMs {
			svc := strings.Join(v.Services, ",")
			if svc == "" {
				svc = "-"
			} else if !v.ServicesAlive {
				svc += " (DEAD)"
			}
			ip6 := v.IP6
			if ip6 == "" {
				ip6 = "-"
			}
			ips := v.IP
			if len(v.ExtraIPs) > 0 {
				ips += " +" + fmt.Sprint(len(v.ExtraIPs))
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.Name, h.Name, v.OFPort, ips, ip6, v.MAC, svc)
		}
	}
	tw.Flush()
	for _, h := range s.Hosts {
		if h.Problem != "" {
			fmt.Fprintf(w, "\n!!! %s\n", h.Problem)
		}
	}
}
