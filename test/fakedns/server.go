// Package fakedns is a loopback DNS server for tests of fleet discovery:
// A, AAAA and SRV records the test sets and changes, answers truncated over
// UDP and repeated over TCP as a real server does, and a hanging mode.
package fakedns

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"
)

// Server is a loopback DNS server (UDP and TCP on one port) whose zone
// the test changes as it goes.
type Server struct {
	Addr    string
	mu      sync.Mutex
	a       map[string][]string  // name -> IPv4/IPv6 addresses
	srv     map[string][]dns.SRV // name -> SRV records
	hang    chan struct{}        // non-nil: queries wait on it
	queries atomic.Int32
	servers []*dns.Server
}

// Start starts a server for t, closed when t ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{a: map[string][]string{}, srv: map[string][]dns.SRV{}}
	pc, ln, err := listenUDPAndTCP()
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = pc.LocalAddr().String()
	h := dns.HandlerFunc(s.serve)
	udp := &dns.Server{PacketConn: pc, Handler: h}
	tcp := &dns.Server{Listener: ln, Handler: h}
	s.servers = []*dns.Server{udp, tcp}
	go udp.ActivateAndServe()
	go tcp.ActivateAndServe()
	t.Cleanup(s.Close)
	return s
}

// listenUDPAndTCP listens on one loopback port for both protocols: the
// port the kernel gave UDP may be another process's on TCP, so a few tries.
func listenUDPAndTCP() (net.PacketConn, net.Listener, error) {
	var err error
	for range 20 {
		var pc net.PacketConn
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			return nil, nil, err
		}
		var ln net.Listener
		if ln, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			return pc, ln, nil
		}
		pc.Close()
	}
	return nil, nil, fmt.Errorf("no loopback port free for both UDP and TCP: %w", err)
}

// Close stops the server.
func (s *Server) Close() {
	s.mu.Lock()
	if s.hang != nil {
		close(s.hang)
		s.hang = nil
	}
	s.mu.Unlock()
	for _, srv := range s.servers {
		_ = srv.Shutdown()
	}
}

// SetA sets the A and AAAA records of name (none: the name has no address).
func (s *Server) SetA(name string, ips ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.a[dns.Fqdn(name)] = ips
}

// SetSRV sets the SRV records of name.
func (s *Server) SetSRV(name string, recs ...dns.SRV) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.srv[dns.Fqdn(name)] = recs
}

// Hang makes every query wait, unanswered, until Close.
func (s *Server) Hang() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hang = make(chan struct{})
}

func (s *Server) serve(w dns.ResponseWriter, req *dns.Msg) {
	s.queries.Add(1)
	s.mu.Lock()
	hang := s.hang
	s.mu.Unlock()
	if hang != nil {
		<-hang
		return
	}
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	s.mu.Lock()
	for _, q := range req.Question {
		hdr := dns.RR_Header{Name: q.Name, Class: dns.ClassINET, Ttl: 5}
		switch q.Qtype {
		case dns.TypeA, dns.TypeAAAA:
			for _, ip := range s.a[q.Name] {
				p := net.ParseIP(ip)
				switch {
				case p.To4() != nil && q.Qtype == dns.TypeA:
					hdr.Rrtype = dns.TypeA
					m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: p.To4()})
				case p.To4() == nil && q.Qtype == dns.TypeAAAA:
					hdr.Rrtype = dns.TypeAAAA
					m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr, AAAA: p})
				}
			}
		case dns.TypeSRV:
			for _, r := range s.srv[q.Name] {
				r.Hdr = hdr
				r.Hdr.Rrtype = dns.TypeSRV
				r.Target = dns.Fqdn(r.Target)
				m.Answer = append(m.Answer, &r)
			}
		}
	}
	s.mu.Unlock()
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp && m.Len() > 512 {
		m.Truncate(512) // the client retries over TCP, as with a real server
	}
	_ = w.WriteMsg(m)
}

// Queries is how many queries arrived.
func (s *Server) Queries() int { return int(s.queries.Load()) }
