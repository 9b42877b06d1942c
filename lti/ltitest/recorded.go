package ltitest

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"strings"
)

// recordedFS holds documented launches of real LMSes (Canvas, Moodle,
// Blackboard, D2L) with their quirks: claim shapes the hub must accept.
//
//go:embed recorded
var recordedFS embed.FS

// Recorded returns the payloads of the recorded launches by name
// ("canvas/launch-resource-link").
func Recorded() (map[string]map[string]any, error) {
	out := map[string]map[string]any{}
	err := fs.WalkDir(recordedFS, "recorded", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasPrefix(d.Name(), "launch-") {
			return err
		}
		b, err := recordedFS.ReadFile(path)
		if err != nil {
			return err
		}
		var doc struct {
			Data struct {
				Payload map[string]any `json:"payload"`
			} `json:"data"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			return fmt.Errorf("ltitest: %s: %w", path, err)
		}
		name := strings.TrimSuffix(strings.TrimPrefix(path, "recorded/"), ".json")
		out[name] = doc.Data.Payload
		return nil
	})
	return out, err
}

// AsRecorded makes a launch whose claims are a recorded payload, with the
// protocol fields this platform must own replaced: iss, aud (keeping the
// recording's string-or-array shape, with azp when it is an array),
// deployment id, nonce, times and the target link.
func (p *Platform) AsRecorded(payload map[string]any) Launch {
	claims := map[string]any{}
	for k, v := range payload {
		claims[k] = v
	}
	for _, k := range []string{"iss", "nonce", "iat", "exp", "nbf", "aud", "azp"} {
		delete(claims, k)
	}
	l := Launch{Claims: claims}
	if msg, ok := payload["https://purl.imsglobal.org/spec/lti/claim/message_type"].(string); ok {
		l.Message = msg
	}
	if sub, ok := payload["sub"].(string); ok {
		l.Subject = sub
	}
	if _, isArray := payload["aud"].([]any); isArray {
		l.Tamper = func(_ map[string]any, c map[string]any) {
			c["aud"] = []string{p.ClientID, "another-audience"}
			c["azp"] = p.ClientID
		}
	}
	return l
}
