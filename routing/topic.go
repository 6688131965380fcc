package routing

import "strings"

// Match reports whether an AMQP topic binding pattern matches a routing
// key, with RabbitMQ's semantics: both are words separated by ".", "*"
// matches exactly one word, "#" matches zero or more words, and any other
// word matches itself. Empty words are words ("a..b" has three); the empty
// routing key has no words, so only patterns made of "#" match it.
func Match(pattern, key string) bool {
	return compilePattern(pattern).match(key)
}

// pattern is a compiled binding pattern.
type pattern []string

func compilePattern(p string) pattern {
	if p == "" {
		return pattern{}
	}
	return strings.Split(p, ".")
}

func splitKey(key string) []string {
	if key == "" {
		return nil
	}
	return strings.Split(key, ".")
}

// match runs a dynamic programme over the words: reach[j] says whether the
// pattern words seen so far can consume exactly the first j key words. It
// is O(len(pattern)·len(key)), whatever the number of "#", so no input can
// make it slow.
func (p pattern) match(key string) bool {
	words := splitKey(key)
	n := len(words)
	var buf [2][17]bool
	var reach, next []bool
	if n+1 <= len(buf[0]) {
		reach, next = buf[0][:n+1], buf[1][:n+1]
	} else {
		reach, next = make([]bool, n+1), make([]bool, n+1)
	}
	reach[0] = true
	for _, pw := range p {
		clear(next)
		switch pw {
		case "#":
			any := false
			for j := 0; j <= n; j++ {
				any = any || reach[j]
				next[j] = any
			}
		case "*":
			for j := 0; j < n; j++ {
				next[j+1] = reach[j]
			}
		default:
			for j := 0; j < n; j++ {
				next[j+1] = reach[j] && words[j] == pw
			}
		}
		reach, next = next, reach
	}
	return reach[n]
}
