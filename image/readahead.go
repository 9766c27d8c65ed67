package image

import (
	"io"
	"sync"
)

// readahead reads its source in a goroutine of its own, a few large chunks
// ahead of its reader, so the stages of a layer's stream (network, hash and
// blob write; decompression; tar hash and unpack) run on separate cores
// instead of taking turns on one. Chunks and the source's error arrive in
// order; once the reader has seen the error (io.EOF included), everything
// the goroutine did happened before.
type readahead struct {
	full   chan chunk
	free   chan []byte
	stop   chan struct{}
	exited chan struct{}
	once   sync.Once

	cur []byte // unread part of the chunk being read
	buf []byte // the whole of that chunk, to give back
	err error  // the source's error, once reached
}

type chunk struct {
	b   []byte
	err error
}

const (
	readaheadChunk  = 256 << 10
	readaheadChunks = 4
)

func newReadahead(r io.Reader) *readahead {
	ra := &readahead{
		full:   make(chan chunk, readaheadChunks),
		free:   make(chan []byte, readaheadChunks),
		stop:   make(chan struct{}),
		exited: make(chan struct{}),
	}
	for range readaheadChunks {
		ra.free <- make([]byte, readaheadChunk)
	}
	go ra.fill(r)
	return ra
}

func (ra *readahead) fill(r io.Reader) {
	defer close(ra.exited)
	for {
		var b []byte
		select {
		case b = <-ra.free:
		case <-ra.stop:
			return
		}
		n, err := io.ReadFull(r, b)
		if err == io.ErrUnexpectedEOF {
			err = io.EOF
		}
		select {
		case ra.full <- chunk{b: b[:n], err: err}:
		case <-ra.stop:
			return
		}
		if err != nil {
			return
		}
	}
}

func (ra *readahead) Read(p []byte) (int, error) {
	for len(ra.cur) == 0 {
		if ra.buf != nil {
			ra.free <- ra.buf[:cap(ra.buf)]
			ra.buf = nil
		}
		if ra.err != nil {
			return 0, ra.err
		}
		c := <-ra.full
		ra.cur, ra.buf, ra.err = c.b, c.b, c.err
	}
	n := copy(p, ra.cur)
	ra.cur = ra.cur[n:]
	return n, nil
}

// Close stops the goroutine and waits for it: after Close, nothing reads
// the source any more. The goroutine may be in the middle of one read of
// the source, which Close waits out.
func (ra *readahead) Close() {
	ra.once.Do(func() { close(ra.stop) })
	<-ra.exited
}
