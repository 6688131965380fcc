// Package tcpproxy is a loopback TCP forwarder that tests open and cut at
// will, to play a broker or database that is unreachable, comes back, or
// drops every connection at once.
package tcpproxy

import (
	"io"
	"net"
	"sync"
	"testing"
)

// Proxy forwards connections from Addr to a target while it is open.
type Proxy struct {
	// Addr is where clients connect (127.0.0.1:port).
	Addr   string
	target string

	mu    sync.Mutex
	up    bool
	conns map[net.Conn]bool
}

// New starts a proxy to target that refuses connections until Open. It
// stops when t ends.
func New(t testing.TB, target string) *Proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{Addr: l.Addr().String(), target: target, conns: map[net.Conn]bool{}}
	t.Cleanup(func() {
		l.Close()
		p.Cut()
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			up := p.up
			p.mu.Unlock()
			if !up {
				c.Close()
				continue
			}
			go p.forward(c)
		}
	}()
	return p
}

// Open lets connections through.
func (p *Proxy) Open() {
	p.mu.Lock()
	p.up = true
	p.mu.Unlock()
}

// Cut refuses new connections and closes every open one.
func (p *Proxy) Cut() {
	p.mu.Lock()
	p.up = false
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
	p.mu.Unlock()
}

func (p *Proxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.up {
		return false
	}
	for _, c := range cs {
		p.conns[c] = true
	}
	return true
}

func (p *Proxy) forward(c net.Conn) {
	defer c.Close()
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer s.Close()
	if !p.track(c, s) {
		return
	}
	done := make(chan struct{}, 2)
	go func() { io.Copy(s, c); done <- struct{}{} }()
	go func() { io.Copy(c, s); done <- struct{}{} }()
	<-done
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, s)
	p.mu.Unlock()
}
