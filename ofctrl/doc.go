// Package ofctrl is the OpenFlow 1.5 controller library of ovs-dlb, built
// on antrea.io/libOpenflow: connections to a bridge, flow and group mods,
// bundles, multipart statistics, packet-in/out, and a builder that renders
// flows in ovs-ofctl syntax.
//
// It owns: the OpenFlow protocol. It must not touch: OVSDB, the load
// balancer's model or pipeline, or anything but the switch connection it
// is given.
package ofctrl
