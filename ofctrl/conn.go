package ofctrl

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	of "antrea.io/libOpenflow/openflow15"
)

// ErrClosed is returned by operations on a closed connection.
var ErrClosed = errors.New("openflow connection closed")

// ErrVersion says the switch does not speak OpenFlow 1.5.
var ErrVersion = errors.New("switch does not offer OpenFlow 1.5")

// ConnOptions tune a connection.
type ConnOptions struct {
	// EchoInterval is how long the connection may be idle before an echo
	// request is sent (default 5s); EchoTimeout how long the switch has to
	// answer it before the connection is declared dead (default 5s).
	EchoInterval time.Duration
	EchoTimeout  time.Duration
	// PacketIn receives packet-ins, one at a time, in order. It must not
	// block for long: the connection queues at most 1024 of them and drops
	// the rest (counted in Stats).
	PacketIn func(*PacketIn)
	// FlowRemoved, when set, receives each flow the switch removed that
	// had FlagSendFlowRemoved, with its final counters, on the
	// connection's reader: it must be quick and must not keep its
	// argument.
	FlowRemoved func(*FlowCounter)
	Logger      *slog.Logger
}

func (o *ConnOptions) defaults() {
	if o.EchoInterval == 0 {
		o.EchoInterval = 5 * time.Second
	}
	if o.EchoTimeout == 0 {
		o.EchoTimeout = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Conn is one OpenFlow 1.5 session with a switch.
type Conn struct {
	target string
	nc     net.Conn
	opts   ConnOptions
	log    *slog.Logger

	// DatapathID and NTables come from the switch's features reply.
	DatapathID uint64
	NTables    uint8

	xid atomic.Uint32

	wmu sync.Mutex // guards w
	w   *bufio.Writer

	mu      sync.Mutex       // guards the fields below
	pending map[uint32]*call // requests awaiting a reply
	sinks   []sinkEntry      // one-way messages whose errors someone awaits, by xid block
	err     error            // why the connection closed

	closed    chan struct{}
	closeOnce sync.Once
	lastRecv  atomic.Int64 // unix nanoseconds
	packetIns chan *PacketIn
	dropped   atomic.Uint64
	wg        sync.WaitGroup
}

type call struct {
	done      chan struct{}
	multipart bool
	body      []byte // multipart: the bodies of all parts
	// onPart, when set, takes each multipart part's body as it arrives
	// (on the read loop: it must not keep it), instead of body.
	onPart func(body []byte)
	reply  []byte // the reply message, header included
	err    error
}

// errorSink collects switch errors for a set of one-way messages.
type errorSink struct {
	mu   sync.Mutex
	errs []error
	// blocks are the messages' xids, each block consecutive from first,
	// with what each message was (to name it in errors; nil when unknown).
	blocks []xidBlock
}

// xidBlock is n consecutive xids from first, and the mods sent with them
// (mods[i] with first+i) when there are any. A bundle of 100,000 mods
// keeps a block, not a map entry per mod.
type xidBlock struct {
	first, n uint32
	mods     []Mod
}

func (b xidBlock) has(xid uint32) bool { return xid-b.first < b.n }

// modOf is the mod sent with xid, if known.
func (s *errorSink) modOf(xid uint32) Mod {
	for _, b := range s.blocks {
		if b.has(xid) && int(xid-b.first) < len(b.mods) {
			return b.mods[xid-b.first]
		}
	}
	return nil
}

func (s *errorSink) add(err error) {
	s.mu.Lock()
	s.errs = append(s.errs, err)
	s.mu.Unlock()
}

func (s *errorSink) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return errors.Join(s.errs...)
}

// Dial connects to a switch's OpenFlow endpoint ("unix:PATH" or
// "tcp:HOST:PORT"), negotiates OpenFlow 1.5 and reads its features.
func Dial(ctx context.Context, target string, opts ConnOptions) (*Conn, error) {
	opts.defaults()
	network, addr, ok := strings.Cut(target, ":")
	if !ok || (network != "unix" && network != "tcp") {
		return nil, fmt.Errorf("openflow target %q: want unix:PATH or tcp:HOST:PORT", target)
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", target, err)
	}
	c := &Conn{
		target: target, nc: nc, opts: opts, log: opts.Logger.With("switch", target),
		w: bufio.NewWriterSize(nc, 1<<18), pending: map[uint32]*call{},
		closed: make(chan struct{}), packetIns: make(chan *PacketIn, 1024),
	}
	c.lastRecv.Store(time.Now().UnixNano())
	if err := c.handshake(ctx); err != nil {
		nc.Close()
		return nil, fmt.Errorf("%s: %w", target, err)
	}
	c.wg.Add(3)
	go c.readLoop()
	go c.keepalive()
	go c.deliverPacketIns()
	if err := c.features(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("%s: %w", target, err)
	}
	if opts.PacketIn != nil || opts.FlowRemoved != nil {
		if err := c.enableAsync(ctx, opts.PacketIn != nil, opts.FlowRemoved != nil); err != nil {
			c.Close()
			return nil, fmt.Errorf("%s: %w", target, err)
		}
	}
	return c, nil
}

// enableAsync asks for packet-ins of every reason and/or flow removed
// messages of every reason. OVS sends no asynchronous message to
// connections on a bridge's management socket unless asked.
func (c *Conn) enableAsync(ctx context.Context, packetIns, flowRemoved bool) error {
	var body []byte
	prop := func(typ uint16, mask uint32) {
		body = put16(body, typ)
		body = put16(body, 8)
		body = put32(body, mask)
	}
	if packetIns {
		for _, typ := range []uint16{0, 1} { // OFPACPT_PACKET_IN_SLAVE, _MASTER
			prop(typ, 0x3f) // no_match, action, invalid_ttl, action_set, group, packet_out
		}
	}
	if flowRemoved {
		for _, typ := range []uint16{4, 5} { // OFPACPT_FLOW_REMOVED_SLAVE, _MASTER
			prop(typ, 0x3f) // idle and hard timeout, delete, group and meter delete, eviction
		}
	}
	xid := c.nextXid()
	msg, start := appendHeader(nil, of.Type_SetAsync, xid)
	msg = finishMessage(append(msg, body...), start)
	sink := &errorSink{}
	c.addSink(sink, xidBlock{first: xid, n: 1})
	defer c.removeSink(sink)
	if err := c.write(false, msg); err != nil {
		return err
	}
	if err := c.Barrier(ctx); err != nil {
		return err
	}
	if err := sink.err(); err != nil {
		return fmt.Errorf("enable asynchronous messages: %w", err)
	}
	return nil
}

func (c *Conn) nextXid() uint32 { return c.reserveXids(1) }

// reserveXids reserves n consecutive xids and returns the first; a block
// never wraps around through 0.
func (c *Conn) reserveXids(n int) uint32 {
	for {
		last := c.xid.Add(uint32(n))
		first := last - uint32(n) + 1
		if first != 0 && first <= last {
			return first
		}
	}
}

// handshake exchanges HELLOs. It runs before the read loop, so it reads
// the socket itself.
func (c *Conn) handshake(ctx context.Context) error {
	if dl, ok := ctx.Deadline(); ok {
		_ = c.nc.SetDeadline(dl)
		defer c.nc.SetDeadline(time.Time{})
	}
	// HELLO with a version bitmap offering 1.5 only.
	hello, start := appendHeader(nil, of.Type_Hello, c.nextXid())
	hello = put16(hello, 1) // OFPHET_VERSIONBITMAP
	hello = put16(hello, 8)
	hello = put32(hello, 1<<of.VERSION)
	hello = finishMessage(hello, start)
	if _, err := c.nc.Write(hello); err != nil {
		return fmt.Errorf("send hello: %w", err)
	}
	msg, err := readMessage(c.nc, newMessage)
	if err != nil {
		return fmt.Errorf("read hello: %w", err)
	}
	switch msg[1] {
	case of.Type_Hello:
	case of.Type_Error:
		return fmt.Errorf("%w: %v", ErrVersion, decodeError(msg, nil))
	default:
		return fmt.Errorf("expected hello, got message type %d", msg[1])
	}
	versions := helloVersions(msg)
	if versions&(1<<of.VERSION) == 0 {
		return fmt.Errorf("%w (it offers %s): enable it on the bridge, e.g. ovs-vsctl set bridge BRIDGE protocols=OpenFlow13,OpenFlow15",
			ErrVersion, versionList(versions))
	}
	return nil
}

// helloVersions returns the bitmap of versions a HELLO offers.
func helloVersions(msg []byte) uint32 {
	bitmap := uint32(1) << msg[0]
	if msg[0] > of.VERSION {
		bitmap |= 1 << of.VERSION // a newer switch also speaks ours
	}
	for p := msg[8:]; len(p) >= 4; {
		typ, n := be16(p), int(be16(p[2:]))
		if n < 4 || n > len(p) {
			break
		}
		if typ == 1 && n >= 8 {
			bitmap = be32(p[4:])
		}
		p = p[pad8(n):]
	}
	return bitmap
}

func versionList(bitmap uint32) string {
	names := map[int]string{1: "1.0", 2: "1.1", 3: "1.2", 4: "1.3", 5: "1.4", 6: "1.5"}
	var out []string
	for v := 1; v <= 6; v++ {
		if bitmap&(1<<v) != 0 {
			out = append(out, "OpenFlow "+names[v])
		}
	}
	if len(out) == 0 {
		return "nothing"
	}
	return strings.Join(out, ", ")
}

func (c *Conn) features(ctx context.Context) error {
	reply, err := c.roundTrip(ctx, of.Type_FeaturesRequest, nil)
	if err != nil {
		return fmt.Errorf("features: %w", err)
	}
	if len(reply) < 32 {
		return errors.New("features reply too short")
	}
	c.DatapathID = be64(reply[8:])
	c.NTables = reply[20]
	return nil
}

// readMessage reads one OpenFlow message, header included.
// newMessage allocates a message of n bytes.
func newMessage(_ [8]byte, n int) []byte { return make([]byte, n) }

func readMessage(r io.Reader, alloc func(h [8]byte, n int) []byte) ([]byte, error) {
	var h [8]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(h[2:]))
	if n < 8 {
		return nil, fmt.Errorf("message length %d", n)
	}
	msg := alloc(h, n)
	copy(msg, h[:])
	if _, err := io.ReadFull(r, msg[8:]); err != nil {
		return nil, err
	}
	return msg, nil
}

func (c *Conn) readLoop() {
	defer c.wg.Done()
	r := bufio.NewReaderSize(c.nc, 1<<16)
	// A part of a multipart reply that is handed to its call's onPart is
	// read into one buffer, reused: a dump of 100,000 flows' counters
	// every second made 15 MB of garbage a second otherwise.
	var scratch []byte
	alloc := func(h [8]byte, n int) []byte {
		if h[1] == of.Type_MultiPartReply && c.streamed(be32(h[4:])) {
			if cap(scratch) < n {
				scratch = make([]byte, n)
			}
			return scratch[:n]
		}
		return newMessage(h, n)
	}
	for {
		msg, err := readMessage(r, alloc)
		if err != nil {
			c.fail(fmt.Errorf("read: %w", err))
			return
		}
		c.lastRecv.Store(time.Now().UnixNano())
		c.dispatch(msg)
	}
}

func (c *Conn) dispatch(msg []byte) {
	typ, xid := msg[1], be32(msg[4:])
	switch typ {
	case of.Type_EchoRequest:
		reply := append([]byte(nil), msg...)
		reply[1] = of.Type_EchoReply
		_ = c.write(true, reply)
		return
	case of.Type_Error:
		c.mu.Lock()
		cl, sink := c.pending[xid], c.sinkOf(xid)
		if cl != nil {
			delete(c.pending, xid)
		}
		c.mu.Unlock()
		var mod Mod
		if sink != nil {
			mod = sink.modOf(xid)
		}
		serr := decodeError(msg, mod)
		switch {
		case cl != nil:
			cl.err = serr
			close(cl.done)
		case sink != nil:
			sink.add(serr)
		default:
			c.log.Warn("switch error for no pending request", "err", serr)
		}
		return
	case of.Type_FlowRemoved:
		if c.opts.FlowRemoved == nil {
			return
		}
		var fc FlowCounter
		if err := readFlowRemoved(msg, &fc); err != nil {
			c.log.Warn("bad flow removed", "err", err)
			return
		}
		c.opts.FlowRemoved(&fc)
		return
	case of.Type_PacketIn:
		pi, err := decodePacketIn(msg)
		if err != nil {
			c.log.Warn("bad packet-in", "err", err)
			return
		}
		select {
		case c.packetIns <- pi:
		default:
			c.dropped.Add(1)
		}
		return
	case of.Type_MultiPartReply:
		c.mu.Lock()
		cl := c.pending[xid]
		if cl == nil {
			c.mu.Unlock()
			return
		}
		more := be16(msg[10:])&1 != 0
		if cl.onPart == nil {
			cl.body = append(cl.body, msg[16:]...)
		}
		if !more {
			delete(c.pending, xid)
		}
		c.mu.Unlock()
		if cl.onPart != nil {
			cl.onPart(msg[16:])
		}
		if !more {
			close(cl.done)
		}
		return
	}
	c.mu.Lock()
	cl := c.pending[xid]
	if cl != nil {
		delete(c.pending, xid)
	}
	c.mu.Unlock()
	if cl != nil {
		cl.reply = msg
		close(cl.done)
	}
}

func (c *Conn) deliverPacketIns() {
	defer c.wg.Done()
	for {
		select {
		case <-c.closed:
			return
		case pi := <-c.packetIns:
			if c.opts.PacketIn != nil {
				c.opts.PacketIn(pi)
			}
		}
	}
}

func (c *Conn) keepalive() {
	defer c.wg.Done()
	tick := time.NewTicker(c.opts.EchoInterval / 2)
	defer tick.Stop()
	for {
		select {
		case <-c.closed:
			return
		case <-tick.C:
		}
		idle := time.Since(time.Unix(0, c.lastRecv.Load()))
		if idle < c.opts.EchoInterval {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), c.opts.EchoTimeout)
		_, err := c.roundTrip(ctx, of.Type_EchoRequest, nil)
		cancel()
		if err != nil && !errors.Is(err, ErrClosed) {
			c.fail(fmt.Errorf("switch did not answer an echo request within %s: %w", c.opts.EchoTimeout, err))
			return
		}
	}
}

// fail closes the connection with a reason.
func (c *Conn) fail(err error) {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.err = err
		pending := c.pending
		c.pending = map[uint32]*call{}
		c.mu.Unlock()
		close(c.closed)
		c.nc.Close()
		for _, cl := range pending {
			cl.err = fmt.Errorf("%w: %v", ErrClosed, err)
			close(cl.done)
		}
		c.log.Info("openflow connection closed", "reason", err)
	})
}

// Close closes the connection.
func (c *Conn) Close() error {
	c.fail(errors.New("closed by the controller"))
	c.wg.Wait()
	return nil
}

// Done is closed when the connection is closed.
func (c *Conn) Done() <-chan struct{} { return c.closed }

// Err says why the connection closed (nil while it is open).
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Target is the endpoint the connection was made to.
func (c *Conn) Target() string { return c.target }

// DroppedPacketIns counts packet-ins dropped because the handler was slow.
func (c *Conn) DroppedPacketIns() uint64 { return c.dropped.Load() }

// write sends encoded messages; flush pushes them to the socket now.
func (c *Conn) write(flush bool, msgs ...[]byte) error {
	select {
	case <-c.closed:
		return fmt.Errorf("%w: %v", ErrClosed, c.Err())
	default:
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	for _, m := range msgs {
		if _, err := c.w.Write(m); err != nil {
			go c.fail(fmt.Errorf("write: %w", err))
			return fmt.Errorf("%w: %v", ErrClosed, err)
		}
	}
	if flush {
		if err := c.w.Flush(); err != nil {
			go c.fail(fmt.Errorf("write: %w", err))
			return fmt.Errorf("%w: %v", ErrClosed, err)
		}
	}
	return nil
}

// streamed says whether the reply to xid goes to an onPart as it comes.
func (c *Conn) streamed(xid uint32) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	cl := c.pending[xid]
	return cl != nil && cl.onPart != nil
}

// register starts waiting for the reply to xid.
func (c *Conn) register(xid uint32, multipart bool) (*call, error) {
	return c.registerWith(xid, multipart, nil)
}

// registerWith is register with a multipart call's onPart.
func (c *Conn) registerWith(xid uint32, multipart bool, onPart func([]byte)) (*call, error) {
	cl := &call{done: make(chan struct{}), multipart: multipart, onPart: onPart}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return nil, fmt.Errorf("%w: %v", ErrClosed, c.err)
	}
	c.pending[xid] = cl
	return cl, nil
}

func (c *Conn) wait(ctx context.Context, xid uint32, cl *call) error {
	select {
	case <-cl.done:
		return cl.err
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.pending, xid)
		c.mu.Unlock()
		return ctx.Err()
	}
}

// roundTrip sends a message of type typ with body and returns the reply.
func (c *Conn) roundTrip(ctx context.Context, typ uint8, body []byte) ([]byte, error) {
	cl, err := c.request(ctx, typ, nil, body, false)
	if err != nil {
		return nil, err
	}
	return cl.reply, nil
}

// multipart sends a multipart request and returns the bodies of all reply
// parts, concatenated.
func (c *Conn) multipart(ctx context.Context, mpType uint16, body []byte) ([]byte, error) {
	head := put16(nil, mpType)
	head = put16(head, 0)
	head = zeros(head, 4)
	cl, err := c.request(ctx, of.Type_MultiPartRequest, head, body, true)
	if err != nil {
		return nil, err
	}
	return cl.body, nil
}

// multipartEach sends a multipart request and hands each reply part's
// body to onPart as it arrives, on the read loop (onPart must not keep it).
func (c *Conn) multipartEach(ctx context.Context, mpType uint16, body []byte, onPart func([]byte)) error {
	head := put16(nil, mpType)
	head = put16(head, 0)
	head = zeros(head, 4)
	_, err := c.requestWith(ctx, of.Type_MultiPartRequest, head, body, true, onPart)
	return err
}

// request sends a message (header, then head and body) and waits for its
// reply.
func (c *Conn) request(ctx context.Context, typ uint8, head, body []byte, multipart bool) (*call, error) {
	return c.requestWith(ctx, typ, head, body, multipart, nil)
}

func (c *Conn) requestWith(ctx context.Context, typ uint8, head, body []byte, multipart bool, onPart func([]byte)) (*call, error) {
	xid := c.nextXid()
	msg, start := appendHeader(nil, typ, xid)
	msg = finishMessage(append(append(msg, head...), body...), start)
	cl, err := c.registerWith(xid, multipart, onPart)
	if err != nil {
		return nil, err
	}
	if err := c.write(true, msg); err != nil {
		return nil, err
	}
	if err := c.wait(ctx, xid, cl); err != nil {
		return nil, err
	}
	return cl, nil
}

// Barrier waits until the switch has processed every message sent before.
func (c *Conn) Barrier(ctx context.Context) error {
	_, err := c.roundTrip(ctx, of.Type_BarrierRequest, nil)
	return err
}

// Send applies mods one after the other (not atomically: use a Bundle for
// that) and waits until the switch processed them. It returns the
// switch's errors, each naming the mod that failed.
func (c *Conn) Send(ctx context.Context, mods ...Mod) error {
	block := xidBlock{first: c.reserveXids(len(mods)), n: uint32(len(mods)), mods: mods}
	sink := &errorSink{}
	buf := make([]byte, 0, 256*len(mods))
	for i, m := range mods {
		buf = m.appendTo(buf, block.first+uint32(i))
	}
	c.addSink(sink, block)
	defer c.removeSink(sink)
	if err := c.write(false, buf); err != nil {
		return err
	}
	if err := c.Barrier(ctx); err != nil {
		return err
	}
	return sink.err()
}

// Post sends one-way messages (packet-outs, say) and pushes them to the
// socket at once, without waiting for the switch: no barrier, so an error
// the switch answers with is only logged. It is for messages whose loss is
// harmless (a health probe is sent again), sent many a second, where
// Send's round trip per call would cost more than the messages.
func (c *Conn) Post(mods ...Mod) error {
	first := c.reserveXids(len(mods))
	buf := make([]byte, 0, 128*len(mods))
	for i, m := range mods {
		buf = m.appendTo(buf, first+uint32(i))
	}
	return c.write(true, buf)
}

// addSink routes the switch's errors for a block of xids to s.
func (c *Conn) addSink(s *errorSink, b xidBlock) {
	c.mu.Lock()
	s.mu.Lock()
	s.blocks = append(s.blocks, b)
	s.mu.Unlock()
	c.sinks = append(c.sinks, sinkEntry{b, s})
	c.mu.Unlock()
}

// removeSink stops routing errors to s.
func (c *Conn) removeSink(s *errorSink) {
	c.mu.Lock()
	c.sinks = slices.DeleteFunc(c.sinks, func(e sinkEntry) bool { return e.sink == s })
	c.mu.Unlock()
}

// sinkOf is the sink awaiting errors for xid (c.mu held).
func (c *Conn) sinkOf(xid uint32) *errorSink {
	for _, e := range c.sinks {
		if e.block.has(xid) {
			return e.sink
		}
	}
	return nil
}

// sinkEntry is a block of xids whose errors a sink awaits.
type sinkEntry struct {
	block xidBlock
	sink  *errorSink
}
