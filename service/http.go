package service

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/chronicle-audit/chronicle/auth"
)

// authSource builds the API keys in force, and says loudly when there
// are none.
func (s *Service) authSource() (*auth.Source, error) {
	c := s.cfg
	switch {
	case c.APIKeysFile != "":
		src, err := auth.LoadFile(c.APIKeysFile, func(err error) { s.logger.Error("API keys: " + err.Error()) })
		if err != nil {
			return nil, fmt.Errorf("CHRONICLE_API_KEYS_FILE: %w", err)
		}
		s.logger.Info("access control on", "keys", src.Keyring().Len(), "file", c.APIKeysFile)
		return src, nil
	case c.APIKeys != nil:
		s.logger.Info("access control on", "keys", c.APIKeys.Len())
		return auth.NewSource(c.APIKeys), nil
	}
	if c.ServesAPI() {
		s.logger.Warn("ACCESS CONTROL IS OFF: anyone who can reach this port can read and write audit events; set CHRONICLE_API_KEYS before exposing it")
	}
	return nil, nil
}

// serveDebug serves the profiler on its own address, never on the API's,
// until Close shuts it down. With API keys it asks for an admin key (the
// configuration refuses a non-loopback address without keys).
func (s *Service) serveDebug(addr string, keys *auth.Source) error {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	var h http.Handler = mux
	if keys != nil {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			token, ok := auth.BearerToken(r.Header.Get("Authorization"))
			if ok {
				keys.Refresh()
				var p auth.Principal
				p, ok = keys.Keyring().Authenticate(token)
				ok = ok && p.Scopes.Allows(auth.Admin)
			}
			if !ok {
				w.Header().Set("WWW-Authenticate", `Bearer realm="chronicle"`)
				http.Error(w, "the profiler needs an admin API key: Authorization: Bearer <key>", http.StatusUnauthorized)
				return
			}
			mux.ServeHTTP(w, r)
		})
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s (CHRONICLE_DEBUG_ADDR): %w", addr, err)
	}
	s.debug = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	s.chores.Go(func() {
		if err := s.debug.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			s.logger.Warn("profiler stopped", "addr", addr, "err", err)
		}
	})
	s.logger.Info("profiler listening", "addr", ln.Addr().String())
	return nil
}
