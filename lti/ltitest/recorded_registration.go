package ltitest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
)

// RecordedRegistrar plays a real LMS's side of LTI Dynamic Registration
// from its documented OpenID configuration and registration response
// (Canvas, Moodle, Sakai), served from loopback: the documents' own host is
// rewritten to the server's, and their paths and quirks are kept.
type RecordedRegistrar struct {
	Server *httptest.Server
	// ConfigURL is the openid_configuration the LMS would send, at the
	// recorded path and query (Sakai's is not a .well-known path).
	ConfigURL string
	// Token is the registration_token; both requests must carry it as a
	// bearer (Canvas requires it on the configuration request too).
	Token string
	// Received is the tool's registration request, once made.
	Received map[string]any
}

// NewRecordedRegistrar starts the registrar of lms ("canvas", "moodle" or
// "sakai"). Close its Server when done.
func NewRecordedRegistrar(lms string) (*RecordedRegistrar, error) {
	config, err := recordedData(lms + "/openid-configuration.json")
	if err != nil {
		return nil, err
	}
	answer, err := recordedData(lms + "/registration-response.json")
	if err != nil {
		return nil, err
	}
	var cfg map[string]any
	if err := json.Unmarshal(config, &cfg); err != nil {
		return nil, err
	}
	origin, err := originOf(fmt.Sprint(cfg["issuer"]))
	if err != nil {
		return nil, err
	}
	r := &RecordedRegistrar{Token: "recorded-registration-token"}
	regPath := pathOf(fmt.Sprint(cfg["registration_endpoint"]))
	configPath := "/.well-known/openid-configuration"
	if lms == "sakai" {
		configPath = "/imsblis/lti13/well_known?key=47&clientId=00000000-0000-4000-8000-00000000c5a1&deploymentId=1"
	}
	mux := http.NewServeMux()
	r.Server = httptest.NewServer(mux)
	rewritten := strings.ReplaceAll(string(config), origin, r.Server.URL)
	mux.HandleFunc("GET "+strings.SplitN(configPath, "?", 2)[0], r.bearer(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(rewritten))
	}))
	mux.HandleFunc("POST "+regPath, r.bearer(func(w http.ResponseWriter, req *http.Request) {
		_ = json.NewDecoder(req.Body).Decode(&r.Received)
		w.Header().Set("Content-Type", "application/json")
		w.Write(answer)
	}))
	r.ConfigURL = r.Server.URL + configPath
	return r, nil
}

func (r *RecordedRegistrar) bearer(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		if req.Header.Get("Authorization") != "Bearer "+r.Token {
			http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		next(w, req)
	}
}

func recordedData(name string) ([]byte, error) {
	b, err := recordedFS.ReadFile("recorded/" + name)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("ltitest: %s: %w", name, err)
	}
	return doc.Data, nil
}

func originOf(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("ltitest: issuer %q", raw)
	}
	return u.Scheme + "://" + u.Host, nil
}

func pathOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "/"
	}
	return u.Path
}
