package sso

import (
	"encoding/json"

	"github.com/jmoiron/sqlx/types"
)

func marshalJSON(v any) (types.JSONText, error) {
	b, err := json.Marshal(v)
	return types.JSONText(b), err
}
