package outbound_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/chronicle-audit/chronicle/outbound"
	"github.com/chronicle-audit/chronicle/routing"
)

// A receiver checks a webhook's signature with the secret it shares with
// the sink: HMAC-SHA256 over "id.timestamp.body", keyed with the bytes
// after "whsec_".
func ExampleSign() {
	secret, _ := routing.DecodeSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	body := []byte(`[{"id":"01a2…","event_type":"security.login","seq":0}]`)
	sig := outbound.Sign(secret, "siem_0-0", 1764806400, body) // what Chronicle sends

	// The receiver's side, with the standard library only.
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_"))
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%d.%s", "siem_0-0", 1764806400, body)
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	fmt.Println(hmac.Equal([]byte(sig), []byte(want)))
	// Output: true
}
