package config_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/klasterina/hub/internal/config"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

var good = map[string]string{
	"HUB_DATABASE_URL": "postgres://hub:pw@db:5432/hub",
	"HUB_ADMIN_TOKEN":  strings.Repeat("t", 40),
	"HUB_SECRET_KEY":   base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32)),
}

func TestDefaults(t *testing.T) {
	c, err := config.Load(env(good), config.NeedServe)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":8080" || c.PublicURL.String() != "http://localhost:8080" || c.AutoMigrate || c.AppURL != nil ||
		c.LogLevel != slog.LevelInfo || c.OutboundAllowPrivate {
		t.Fatalf("defaults = %+v", c)
	}
}

func TestMigrateNeedsOnlyTheDatabase(t *testing.T) {
	if _, err := config.Load(env(map[string]string{"HUB_DATABASE_URL": good["HUB_DATABASE_URL"]}), config.NeedDatabase); err != nil {
		t.Fatal(err)
	}
	_, err := config.Load(env(map[string]string{"HUB_DATABASE_URL": good["HUB_DATABASE_URL"]}), config.NeedServe)
	var ce *config.Error
	if !errors.As(err, &ce) || ce.Var != "HUB_ADMIN_TOKEN" {
		t.Fatalf("serve without an admin token: %v", err)
	}
}

func TestLogValueMasksSecrets(t *testing.T) {
	c, _ := config.Load(env(good), config.NeedServe)
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "config", c)
	out := buf.String()
	for _, secret := range []string{good["HUB_ADMIN_TOKEN"], good["HUB_SECRET_KEY"], "pw@"} {
		if strings.Contains(out, secret) {
			t.Fatalf("logged config shows a secret: %s", out)
		}
	}
	if !strings.Contains(out, "db:5432") {
		t.Fatalf("logged config lacks the database host: %s", out)
	}
}

func TestRetentionSettings(t *testing.T) {
	c, err := config.Load(env(good), config.NeedServe)
	if err != nil {
		t.Fatal(err)
	}
	if c.DisclosureRetentionDays != 2555 || c.RetentionInterval != 24*time.Hour || c.DeliveryMaxAttempts != 12 {
		t.Fatalf("defaults: %d days, every %s", c.DisclosureRetentionDays, c.RetentionInterval)
	}
	for name, tc := range map[string]struct {
		name, value string
		ok          bool
	}{
		"a year":                  {"HUB_DISCLOSURE_RETENTION_DAYS", "365", true},
		"ten years":               {"HUB_DISCLOSURE_RETENTION_DAYS", "3650", true},
		"no days":                 {"HUB_DISCLOSURE_RETENTION_DAYS", "0", false},
		"past ten years":          {"HUB_DISCLOSURE_RETENTION_DAYS", "3651", false},
		"days not a number":       {"HUB_DISCLOSURE_RETENTION_DAYS", "7y", false},
		"hourly":                  {"HUB_RETENTION_INTERVAL", "1h", true},
		"three attempts":          {"HUB_DELIVERY_MAX_ATTEMPTS", "3", true},
		"no attempt":              {"HUB_DELIVERY_MAX_ATTEMPTS", "0", false},
		"past a hundred attempts": {"HUB_DELIVERY_MAX_ATTEMPTS", "101", false},
		"attempts not a number":   {"HUB_DELIVERY_MAX_ATTEMPTS", "many", false},
		"a week":                  {"HUB_RETENTION_INTERVAL", "168h", true},
		"every second":            {"HUB_RETENTION_INTERVAL", "1s", false},
		"past a week":             {"HUB_RETENTION_INTERVAL", "169h", false},
		"interval not a duration": {"HUB_RETENTION_INTERVAL", "24", false},
	} {
		t.Run(name, func(t *testing.T) {
			e := map[string]string{tc.name: tc.value}
			for k, v := range good {
				e[k] = v
			}
			_, err := config.Load(env(e), config.NeedServe)
			var ce *config.Error
			if tc.ok && err != nil || !tc.ok && (!errors.As(err, &ce) || ce.Var != tc.name) {
				t.Fatalf("%s=%s: %v", tc.name, tc.value, err)
			}
		})
	}
}

func TestSSOSessionSettings(t *testing.T) {
	c, err := config.Load(env(good), config.NeedServe)
	if err != nil {
		t.Fatal(err)
	}
	if c.SSOSessionIdle != 30*time.Minute || c.SSOSessionMax != 12*time.Hour {
		t.Fatalf("defaults: idle %s, max %s", c.SSOSessionIdle, c.SSOSessionMax)
	}
	for name, tc := range map[string]struct {
		set   map[string]string
		fault string
	}{
		"an hour idle":         {map[string]string{"HUB_SSO_SESSION_IDLE": "1h"}, ""},
		"a week at most":       {map[string]string{"HUB_SSO_SESSION_MAX": "168h"}, ""},
		"idle too short":       {map[string]string{"HUB_SSO_SESSION_IDLE": "30s"}, "HUB_SSO_SESSION_IDLE"},
		"idle past a day":      {map[string]string{"HUB_SSO_SESSION_IDLE": "25h", "HUB_SSO_SESSION_MAX": "48h"}, "HUB_SSO_SESSION_IDLE"},
		"max past thirty days": {map[string]string{"HUB_SSO_SESSION_MAX": "721h"}, "HUB_SSO_SESSION_MAX"},
		"max not a duration":   {map[string]string{"HUB_SSO_SESSION_MAX": "12"}, "HUB_SSO_SESSION_MAX"},
		"idle longer than max": {map[string]string{"HUB_SSO_SESSION_IDLE": "2h", "HUB_SSO_SESSION_MAX": "1h"}, "HUB_SSO_SESSION_IDLE"},
		"idle as long as max":  {map[string]string{"HUB_SSO_SESSION_IDLE": "1h", "HUB_SSO_SESSION_MAX": "1h"}, ""},
	} {
		t.Run(name, func(t *testing.T) {
			e := map[string]string{}
			for k, v := range good {
				e[k] = v
			}
			for k, v := range tc.set {
				e[k] = v
			}
			_, err := config.Load(env(e), config.NeedServe)
			var ce *config.Error
			if tc.fault == "" && err != nil || tc.fault != "" && (!errors.As(err, &ce) || ce.Var != tc.fault) {
				t.Fatalf("%v: %v", tc.set, err)
			}
		})
	}
}
