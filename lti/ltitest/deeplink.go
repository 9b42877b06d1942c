package ltitest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/klasterina/hub/lti"
)

// DeepLinkResponse is a verified LtiDeepLinkingResponse.
type DeepLinkResponse struct {
	Claims map[string]any
	Items  []map[string]any
	Data   string
}

// deepLinkReturn is the platform's deep_link_return_url: it verifies the
// tool's signed response against the tool's JWKS and keeps its items.
func (p *Platform) deepLinkReturn(w http.ResponseWriter, r *http.Request) {
	claims, err := p.verifyToolJWT(r.FormValue("JWT"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	switch {
	case claims["iss"] != p.ClientID || claims["aud"] != p.Issuer():
		http.Error(w, "iss must be our client_id and aud our issuer", http.StatusBadRequest)
		return
	case claims[lti.ClaimMessageType] != lti.MessageDeepLinkResponse || claims[lti.ClaimVersion] != lti.Version ||
		claims[lti.ClaimDeploymentID] != p.DeploymentID:
		http.Error(w, "not a deep linking response for our deployment", http.StatusBadRequest)
		return
	}
	resp := DeepLinkResponse{Claims: claims}
	raw, _ := json.Marshal(claims[lti.ClaimDLContentItems])
	_ = json.Unmarshal(raw, &resp.Items)
	resp.Data, _ = claims[lti.ClaimDLData].(string)
	p.mu.Lock()
	p.DeepLinks = append(p.DeepLinks, resp)
	p.mu.Unlock()
	if p.ToolLoginURL != "" { // the demo: back to the course page
		http.Redirect(w, r, p.Server.URL+"/", http.StatusSeeOther)
		return
	}
	fmt.Fprintf(w, "received %d items", len(resp.Items))
}

func (p *Platform) verifyToolJWT(token string) (map[string]any, error) {
	client := p.ToolClient
	if client == nil {
		client = http.DefaultClient
	}
	res, err := client.Get(p.ToolJWKSURL)
	if err != nil {
		return nil, fmt.Errorf("fetch tool keys: %w", err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	set, err := jwk.Parse(body)
	if err != nil {
		return nil, fmt.Errorf("tool keys: %w", err)
	}
	payload, err := jws.Verify([]byte(token), jws.WithKeySet(set, jws.WithRequireKid(true)))
	if err != nil {
		return nil, fmt.Errorf("tool signature: %w", err)
	}
	var claims map[string]any
	return claims, json.Unmarshal(payload, &claims)
}
