package routing

import "testing"

func TestMatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern, key string
		want         bool
	}{
		// "#" alone matches everything, even the empty key.
		{"#", "", true},
		{"#", "a", true},
		{"#", "a.b.c", true},
		{"#", "a..b", true},
		// "*" is exactly one word.
		{"*", "", false},
		{"*", "a", true},
		{"*", "a.b", false},
		{"*", "", false},
		// a.# vs a: "#" may match zero words.
		{"a.#", "a", true},
		{"a.#", "a.b", true},
		{"a.#", "a.b.c", true},
		{"a.#", "b", false},
		{"a.#", "ab", false},
		{"a.#", "", false},
		{"#.a", "a", true},
		{"#.a", "x.y.a", true},
		{"#.a", "a.x", false},
		// *.b
		{"*.b", "a.b", true},
		{"*.b", "b", false},
		{"*.b", "a.x.b", false},
		{"*.b", ".b", true}, // the empty word is a word
		// a.*.b and empty words
		{"a.*.b", "a..b", true},
		{"a.*.b", "a.b", false},
		{"a..b", "a..b", true},
		{"a..b", "a.b", false},
		{"a.#.b", "a.b", true},
		{"a.#.b", "a.x.y.b", true},
		{"a.#.b", "a.x.y.c", false},
		{"#.#", "", true},
		{"#.#", "a.b", true},
		{"#.*", "", false},
		{"#.*", "a", true},
		{"*.#", "a.b.c", true},
		{"*.*", "a", false},
		// literal words match exactly, case and all
		{"security.login", "security.login", true},
		{"security.login", "security.logout", false},
		{"security.#", "Security.login", false},
		{"security.#", "security", true},
		{"security.#", "securityx.login", false},
		{"", "", true},
		{"", "a", false},
		{"a", "", false},
		// many hashes stay correct (and fast)
		{"#.#.#.#.#.#.#.#.#.#.x", "a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.y", false},
		{"#.#.#.#.#.#.#.#.#.#.x", "a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.x", true},
	}
	for _, tt := range tests {
		if got := Match(tt.pattern, tt.key); got != tt.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tt.pattern, tt.key, got, tt.want)
		}
	}
}

func FuzzMatch(f *testing.F) {
	for _, s := range [][2]string{{"#", ""}, {"a.#", "a"}, {"*.b", "a.b"}, {"a.*.#.b", "a..x.b"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, key string) {
		if len(pattern) > 40 || len(key) > 40 {
			return // the naive matcher is exponential in the number of "#"
		}
		got := Match(pattern, key)
		if want := matchNaive(splitKey(pattern), splitKey(key)); got != want {
			t.Fatalf("Match(%q, %q) = %v, naive matcher says %v", pattern, key, got, want)
		}
	})
}

// matchNaive is the textbook recursive definition, to check Match against.
func matchNaive(p, k []string) bool {
	if len(p) == 0 {
		return len(k) == 0
	}
	switch p[0] {
	case "#":
		for i := 0; i <= len(k); i++ {
			if matchNaive(p[1:], k[i:]) {
				return true
			}
		}
		return false
	case "*":
		return len(k) > 0 && matchNaive(p[1:], k[1:])
	default:
		return len(k) > 0 && k[0] == p[0] && matchNaive(p[1:], k[1:])
	}
}

func BenchmarkMatch(b *testing.B) {
	p := compilePattern("security.#")
	for b.Loop() {
		p.match("security.login")
	}
}

func BenchmarkRouterRoutes(b *testing.B) {
	r := NewRouter(Default())
	for b.Loop() {
		r.Routes("security.login")
	}
}
