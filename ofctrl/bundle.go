package ofctrl

import (
	"context"
	"errors"
	"fmt"

	of "antrea.io/libOpenflow/openflow15"
)

// Bundle is an OpenFlow 1.5 bundle: mods added to it take effect together
// when it is committed, or not at all. Adds are streamed to the switch
// without waiting for replies; errors are collected and returned by Commit.
type Bundle struct {
	c     *Conn
	id    uint32
	flags uint16
	sink  *errorSink
	n     int // mods added
	buf   []byte
	done  bool
}

// Bundle flags: changes are applied atomically and in order.
const bundleFlags = of.OFPBCT_ATOMIC | of.OFPBCT_ORDERED

// OpenBundle opens a bundle (atomic and ordered).
func (c *Conn) OpenBundle(ctx context.Context) (*Bundle, error) {
	b := &Bundle{c: c, id: c.nextXid(), flags: bundleFlags, sink: &errorSink{}}
	if err := b.control(ctx, of.OFPBCT_OPEN_REQUEST, of.OFPBCT_OPEN_REPLY); err != nil {
		return nil, fmt.Errorf("open bundle: %w", err)
	}
	return b, nil
}

func (b *Bundle) control(ctx context.Context, typ, want uint16) error {
	xid, cl, err := b.sendControl(typ, true)
	if err != nil {
		return err
	}
	return b.await(ctx, xid, cl, want)
}

// Add streams mods into the bundle. It does not wait for the switch, and
// encodes in chunks, so a large bundle never sits whole in memory.
func (b *Bundle) Add(mods ...Mod) error {
	if b.done {
		return errors.New("bundle already committed or discarded")
	}
	const chunk = 256 << 10
	if len(mods) == 0 {
		return nil
	}
	block := xidBlock{first: b.c.reserveXids(len(mods)), n: uint32(len(mods)), mods: mods}
	b.n += len(mods)
	b.c.addSink(b.sink, block)
	buf := b.buf[:0]
	for i, m := range mods {
		xid := block.first + uint32(i)
		start := len(buf)
		buf, _ = appendHeader(buf, of.Type_BundleAddMessage, xid)
		buf = put32(buf, b.id)
		buf = zeros(buf, 2)
		buf = put16(buf, b.flags)
		// The inner message carries the same xid, as OVS expects.
		buf = m.appendTo(buf, xid)
		buf = finishMessage(buf, start)
		if len(buf) >= chunk {
			if err := b.c.write(false, buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	b.buf = buf[:0]
	return b.c.write(false, buf)
}

// Len is the number of mods added so far.
func (b *Bundle) Len() int { return b.n }

// Commit applies the bundle. If the switch refuses any mod, nothing
// changes and the error names each refused mod.
func (b *Bundle) Commit(ctx context.Context) error {
	if b.done {
		return errors.New("bundle already committed or discarded")
	}
	b.done = true
	defer b.c.removeSink(b.sink)
	err := b.control(ctx, of.OFPBCT_COMMIT_REQUEST, of.OFPBCT_COMMIT_REPLY)
	if serr := b.sink.err(); serr != nil {
		return fmt.Errorf("bundle of %d changes not applied: %w", b.n, errors.Join(serr, err))
	}
	if err != nil {
		return fmt.Errorf("commit bundle of %d changes: %w", b.n, err)
	}
	return nil
}

// Discard drops the bundle without applying it.
func (b *Bundle) Discard(ctx context.Context) error {
	if b.done {
		return nil
	}
	b.done = true
	defer b.c.removeSink(b.sink)
	return b.control(ctx, of.OFPBCT_DISCARD_REQUEST, of.OFPBCT_DISCARD_REPLY)
}

// Apply opens a bundle, adds mods and commits them: all take effect or
// none does. The open, the adds and the commit go out back to back, and
// only then does it wait for the switch's replies: one round trip.
func (c *Conn) Apply(ctx context.Context, mods ...Mod) error {
	b := &Bundle{c: c, id: c.nextXid(), flags: bundleFlags, sink: &errorSink{}}
	openXid, openCall, err := b.sendControl(of.OFPBCT_OPEN_REQUEST, false)
	if err != nil {
		return err
	}
	if err := b.Add(mods...); err != nil {
		return err
	}
	commitXid, commitCall, err := b.sendControl(of.OFPBCT_COMMIT_REQUEST, true)
	if err != nil {
		return err
	}
	b.done = true
	defer c.removeSink(b.sink)
	openErr := b.await(ctx, openXid, openCall, of.OFPBCT_OPEN_REPLY)
	commitErr := b.await(ctx, commitXid, commitCall, of.OFPBCT_COMMIT_REPLY)
	if openErr != nil {
		return fmt.Errorf("open bundle: %w", openErr)
	}
	if serr := b.sink.err(); serr != nil {
		return fmt.Errorf("bundle of %d changes not applied: %w", b.n, errors.Join(serr, commitErr))
	}
	if commitErr != nil {
		return fmt.Errorf("commit bundle of %d changes: %w", b.n, commitErr)
	}
	return nil
}

// sendControl sends a bundle control message without waiting.
func (b *Bundle) sendControl(typ uint16, flush bool) (uint32, *call, error) {
	body, err := (&of.BundleControl{BundleID: b.id, Type: typ, Flags: b.flags}).MarshalBinary()
	if err != nil {
		return 0, nil, err
	}
	xid := b.c.nextXid()
	msg, start := appendHeader(nil, of.Type_BundleControl, xid)
	msg = finishMessage(append(msg, body...), start)
	cl, err := b.c.register(xid, false)
	if err != nil {
		return 0, nil, err
	}
	return xid, cl, b.c.write(flush, msg)
}

// await waits for a bundle control reply of type want.
func (b *Bundle) await(ctx context.Context, xid uint32, cl *call, want uint16) error {
	if err := b.c.wait(ctx, xid, cl); err != nil {
		return err
	}
	if len(cl.reply) < 16 || be16(cl.reply[12:]) != want {
		return errors.New("unexpected bundle control reply")
	}
	return nil
}
