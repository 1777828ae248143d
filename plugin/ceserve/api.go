package ceserve

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/wooevents/wooevents/plugin/ceimport"
)

// Redacted replaces every secret of a configuration in the API's answers.
// A PATCH carrying it for a secret key keeps the stored value.
const Redacted = "********"

// elementName is the element's display name in answers.
const elementName = "WooCommerce"

// apiError is an error answer: Cloud Elements' {"message", "requestId"},
// with the store's own code and message when the store refused.
type apiError struct {
	status          int
	Message         string `json:"message"`
	RequestID       string `json:"requestId"`
	ProviderCode    string `json:"providerCode,omitempty"`
	ProviderMessage string `json:"providerMessage,omitempty"`
}

func badRequest(msg, providerCode, providerMsg string) *apiError {
	return &apiError{status: http.StatusBadRequest, Message: msg, ProviderCode: providerCode, ProviderMessage: providerMsg}
}

func errStatus(status int, format string, args ...any) *apiError {
	return &apiError{status: status, Message: fmt.Sprintf(format, args...)}
}

// apiMessage is a ceimport error as the API words it: the key, then what
// is wrong with it.
func apiMessage(err error) string {
	var ie *ceimport.Error
	if errors.As(err, &ie) {
		if ie.Key == "" {
			return ie.Msg
		}
		return ie.Key + ": " + ie.Msg
	}
	return err.Error()
}

func newRequestID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // messages carry URLs with &
	if err := enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"message":"encoding the answer failed"}` + "\n")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, e *apiError) {
	e.RequestID = w.Header().Get("Elements-Request-Id")
	if e.status >= 500 {
		s.log.Error("API request failed", "method", r.Method, "path", r.URL.Path, "status", e.status, "requestId", e.RequestID, "error", e.Message)
	} else {
		s.log.Info("API request refused", "method", r.Method, "path", r.URL.Path, "status", e.status, "requestId", e.RequestID, "reason", e.Message)
	}
	writeJSON(w, e.status, e)
}

// unauthorized is the same answer for every refused credential: it says
// nothing about which part was wrong or whether the instance exists.
func unauthorized() *apiError {
	return errStatus(http.StatusUnauthorized, "Unauthorized: send Authorization: User <secret>, Organization <secret> (or Element <token> for a call about one instance)")
}

// ServeHTTP routes the API, the webhook receivers and /ping.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Elements-Request-Id", newRequestID())
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, EventsPath):
		s.serveDelivery(w, r, strings.TrimPrefix(p, EventsPath))
	case p == InstancesPath || p == InstancesPath+"/":
		if !s.authorized(r, 0) {
			s.fail(w, r, unauthorized())
			return
		}
		switch r.Method {
		case http.MethodPost:
			s.create(w, r)
		case http.MethodGet:
			s.listInstances(w)
		default:
			w.Header().Set("Allow", "GET, POST")
			s.fail(w, r, errStatus(http.StatusMethodNotAllowed, "%s is not allowed on %s", r.Method, InstancesPath))
		}
	case strings.HasPrefix(p, InstancesPath+"/"):
		id, err := strconv.ParseInt(strings.TrimPrefix(p, InstancesPath+"/"), 10, 64)
		if err != nil || id <= 0 {
			id = 0
		}
		if !s.authorized(r, id) {
			s.fail(w, r, unauthorized())
			return
		}
		in := s.get(id)
		if in == nil {
			s.fail(w, r, errStatus(http.StatusNotFound, "no instance with id %s", strings.TrimPrefix(p, InstancesPath+"/")))
			return
		}
		switch r.Method {
		case http.MethodGet:
			writeJSON(w, http.StatusOK, s.instanceJSON(in))
		case http.MethodPatch:
			s.patch(w, r, in)
		case http.MethodDelete:
			s.deleteInstance(w, r, in)
		default:
			w.Header().Set("Allow", "GET, PATCH, DELETE")
			s.fail(w, r, errStatus(http.StatusMethodNotAllowed, "%s is not allowed on an instance", r.Method))
		}
	case p == "/ping":
		_, _ = w.Write([]byte("pong"))
	default:
		s.fail(w, r, errStatus(http.StatusNotFound, "no such resource: %s", p))
	}
}

// authorized checks the account secrets, or, for a call about instance id
// (> 0), that instance's Element token. Secrets are compared as digests in
// constant time; a token naming an unknown instance is compared too.
func (s *Server) authorized(r *http.Request, id int64) bool {
	a, ok := parseAuthorization(r.Header.Get("Authorization"))
	if !ok {
		return false
	}
	if s.creds.accountOK(a) {
		return true
	}
	if id <= 0 || !a.hasElement {
		return false
	}
	want := noToken
	if in := s.get(id); in != nil {
		rec, _ := in.snapshot()
		want = digestOf(rec.Token)
	}
	return want.equal(a.element) && want != noToken
}

// readBody reads a request body of at most ceimport.MaxBodyBytes.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, *apiError) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, ceimport.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errStatus(http.StatusRequestEntityTooLarge, "the body is larger than %d bytes", ceimport.MaxBodyBytes)
		}
		return nil, errStatus(http.StatusBadRequest, "reading the body: %v", err)
	}
	return body, nil
}

func parseBody(body []byte) (*ceimport.Instance, []byte, *apiError) {
	parsed, err := ceimport.Parse(body)
	if err != nil {
		return nil, nil, badRequest(apiMessage(err), "", "")
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, body); err != nil {
		return nil, nil, badRequest("not JSON: "+err.Error(), "", "")
	}
	return parsed, buf.Bytes(), nil
}

func (s *Server) needsPublicURL(parsed *ceimport.Instance) *apiError {
	if parsed.Mode() == ModeWebhook && s.opts.PublicURL == "" {
		return badRequest(ceimport.ConfigurationKeyPrefix+ceimport.KeyVendorType+
			": webhook instances need a public URL the store can reach: start the server with --public-url", "", "")
	}
	return nil
}

// create is POST /instances: validate, authenticate against the store,
// store the record, start the pipeline and, for a webhook instance, wait for
// its webhooks to be registered. Nothing is kept when any step fails.
func (s *Server) create(w http.ResponseWriter, r *http.Request) {
	body, aerr := readBody(w, r)
	if aerr != nil {
		s.fail(w, r, aerr)
		return
	}
	parsed, body, aerr := parseBody(body)
	if aerr == nil {
		aerr = s.needsPublicURL(parsed)
	}
	if aerr == nil {
		aerr = s.checkStore(r.Context(), parsed)
	}
	if aerr != nil {
		s.fail(w, r, aerr)
		return
	}
	id, err := s.reg.nextID()
	if err != nil {
		s.fail(w, r, errStatus(http.StatusInternalServerError, "allocating an instance id: %v", err))
		return
	}
	now := time.Now().UTC().Truncate(time.Second)
	rec := &Record{ID: id, Token: newToken(), Body: body, Created: now, Updated: now}
	if parsed.Mode() == ModeWebhook {
		rec.WebhookSecret = newWebhookSecret()
	}
	if err := s.reg.put(rec); err != nil {
		s.fail(w, r, errStatus(http.StatusInternalServerError, "storing the instance: %v", err))
		return
	}
	in := newInstance(s, rec, parsed)
	s.add(in)
	in.start()
	if parsed.Mode() == ModeWebhook {
		ctx, cancel := context.WithTimeout(r.Context(), s.opts.RegisterTimeout)
		reason, done := in.st.firstRegistration(ctx)
		cancel()
		if done && reason != "" {
			s.rollback(in, parsed)
			key := ceimport.KeyStoreURL
			if strings.Contains(reason, " 401 ") || strings.Contains(reason, " 403 ") {
				key = ceimport.KeyAPIKey
			}
			s.fail(w, r, badRequest(ceimport.ConfigurationKeyPrefix+key+": the store refused to register the webhooks: "+reason, "", ""))
			return
		}
		if !done {
			s.log.Warn("webhook registration still pending; the instance is created", "instance", id)
		}
	}
	in.mu.Lock()
	in.visible = true
	in.mu.Unlock()
	s.log.Info("instance created", "instance", id, "mode", parsed.Mode(), "store", parsed.StoreURL())
	writeJSON(w, http.StatusOK, s.instanceJSON(in))
}

// rollback undoes a create whose webhooks could not be registered.
func (s *Server) rollback(in *instance, parsed *ceimport.Instance) {
	in.stop()
	ctx, cancel := context.WithTimeout(context.Background(), storeCheckTimeout)
	defer cancel()
	if res := s.removeHooks(ctx, in, parsed); !res.ok() {
		s.log.Warn("removing the webhooks of a failed create", "instance", in.id, "error", res.Error, "not_removed", len(res.NotRemoved))
	}
	if err := s.reg.delete(in.id); err != nil {
		s.log.Error("removing a failed create from the registry", "instance", in.id, "error", err)
	}
	s.remove(in.id)
	s.removeState(in)
}

func (s *Server) listInstances(w http.ResponseWriter) {
	all := s.list()
	out := make([]instanceJSON, 0, len(all))
	for _, in := range all {
		out = append(out, s.instanceJSON(in))
	}
	writeJSON(w, http.StatusOK, out)
}

// readOnlyKeys are fields of the API's answers that a PATCH may send back
// unchanged; they are ignored.
var readOnlyKeys = map[string]bool{
	"id": true, "token": true, "createdDate": true, "updatedDate": true, "status": true,
	"eventsEnabled": true, "disabled": true,
}

// mergePatch applies a PATCH body to a stored body: name, tags, element
// replaced (null removes a top-level key, so a stored body with a key a
// later version refuses can be repaired); configuration keys set one by one
// (null removes a key; a secret sent back as Redacted keeps its value).
func mergePatch(stored json.RawMessage, patch []byte) ([]byte, *apiError) {
	var p map[string]json.RawMessage
	if err := json.Unmarshal(patch, &p); err != nil || p == nil {
		return nil, badRequest("not a JSON object", "", "")
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(stored, &top); err != nil {
		return nil, errStatus(http.StatusInternalServerError, "stored body does not decode: %v", err)
	}
	for k, v := range p {
		switch {
		case readOnlyKeys[k]:
		case k == "element":
			// The answers' element also has a name: only the key is the
			// body's.
			var el map[string]json.RawMessage
			if err := json.Unmarshal(v, &el); err != nil || el == nil {
				top[k] = v
				continue
			}
			delete(el, "name")
			b, _ := json.Marshal(el)
			top[k] = b
		case k == "configuration":
			var patchConf map[string]json.RawMessage
			if err := json.Unmarshal(v, &patchConf); err != nil || patchConf == nil {
				return nil, badRequest("configuration: must be an object of the keys to change", "", "")
			}
			var conf map[string]json.RawMessage
			if err := json.Unmarshal(top["configuration"], &conf); err != nil || conf == nil {
				conf = map[string]json.RawMessage{}
			}
			for ck, cv := range patchConf {
				switch {
				case string(cv) == "null":
					delete(conf, ck)
				case isSecretKey(ck) && string(cv) == strconv.Quote(Redacted):
				default:
					conf[ck] = cv
				}
			}
			b, _ := json.Marshal(conf)
			top["configuration"] = b
		case string(v) == "null":
			delete(top, k) // as in configuration: null removes the key
		default:
			top[k] = v
		}
	}
	b, err := json.Marshal(top)
	if err != nil {
		return nil, errStatus(http.StatusInternalServerError, "encoding the body: %v", err)
	}
	return b, nil
}

func isSecretKey(k string) bool {
	for _, s := range ceimport.SecretKeys {
		if k == s {
			return true
		}
	}
	return false
}

// patch is PATCH /instances/{id}: the merged body is validated like a new
// one (and the store checked again when its URL, keys or mode change); the
// instance then restarts from its checkpoint. A refused PATCH changes
// nothing.
func (s *Server) patch(w http.ResponseWriter, r *http.Request, in *instance) {
	in.opMu.Lock()
	defer in.opMu.Unlock()
	if s.get(in.id) == nil { // deleted while this call waited
		s.fail(w, r, errStatus(http.StatusNotFound, "no instance with id %d", in.id))
		return
	}
	patchBody, aerr := readBody(w, r)
	if aerr != nil {
		s.fail(w, r, aerr)
		return
	}
	oldRec, oldParsed := in.snapshot()
	merged, aerr := mergePatch(oldRec.Body, patchBody)
	if aerr != nil {
		s.fail(w, r, aerr)
		return
	}
	parsed, body, aerr := parseBody(merged)
	if aerr == nil {
		aerr = s.needsPublicURL(parsed)
	}
	storeMoved := aerr == nil && oldParsed != nil && parsed.StoreURL() != oldParsed.StoreURL()
	if storeMoved {
		aerr = storeCredentialsSent(patchBody)
	}
	if aerr == nil && (oldParsed == nil || parsed.StoreURL() != oldParsed.StoreURL() || parsed.Mode() != oldParsed.Mode() ||
		credsDiffer(parsed, oldParsed)) {
		aerr = s.checkStore(r.Context(), parsed)
	}
	if aerr != nil {
		s.fail(w, r, aerr)
		return
	}
	rec := *oldRec
	rec.Body, rec.Updated = body, time.Now().UTC().Truncate(time.Second)
	if parsed.Mode() == ModeWebhook && (rec.WebhookSecret == "" || storeMoved) {
		rec.WebhookSecret = newWebhookSecret() // a new store never learns the old one's secret
	}
	if err := s.reg.put(&rec); err != nil {
		s.fail(w, r, errStatus(http.StatusInternalServerError, "storing the instance: %v", err))
		return
	}
	in.stop()
	if oldParsed != nil && oldParsed.Mode() == ModeWebhook &&
		(parsed.Mode() != ModeWebhook || parsed.StoreURL() != oldParsed.StoreURL()) {
		// The webhooks stay with the old store otherwise.
		ctx, cancel := context.WithTimeout(context.Background(), storeCheckTimeout)
		if res := s.removeHooks(ctx, in, oldParsed); !res.ok() {
			s.log.Warn("removing the webhooks from the previous store", "instance", in.id, "error", res.Error, "not_removed", len(res.NotRemoved))
		}
		cancel()
	}
	in.mu.Lock()
	in.rec, in.parsed = &rec, parsed
	in.mu.Unlock()
	in.st.restart(parsed.Mode())
	in.start()
	if parsed.Mode() == ModeWebhook && (oldParsed == nil || oldParsed.Mode() != ModeWebhook || storeMoved || credsDiffer(parsed, oldParsed)) {
		// As on create: keys that may read but not write webhooks pass the
		// store check; the first registration tells.
		ctx, cancel := context.WithTimeout(r.Context(), s.opts.RegisterTimeout)
		reason, done := in.st.firstRegistration(ctx)
		cancel()
		if done && reason != "" {
			s.restore(in, oldRec, oldParsed)
			key := ceimport.KeyStoreURL
			if strings.Contains(reason, " 401 ") || strings.Contains(reason, " 403 ") {
				key = ceimport.KeyAPIKey
			}
			s.fail(w, r, badRequest(ceimport.ConfigurationKeyPrefix+key+": the store refused to register the webhooks: "+reason+"; the instance is as it was", "", ""))
			return
		}
	}
	s.log.Info("instance changed; restarting from its checkpoint", "instance", in.id)
	writeJSON(w, http.StatusOK, s.instanceJSON(in))
}

// storeCredentialsSent refuses a PATCH that points the instance at another
// store without sending that store's keys: the stored keys (never shown,
// and kept when a PATCH leaves them out) would otherwise be sent to
// whatever the new URL names, by anyone holding the instance's token.
func storeCredentialsSent(patchBody []byte) *apiError {
	var p struct {
		Configuration map[string]json.RawMessage `json:"configuration"`
	}
	_ = json.Unmarshal(patchBody, &p)
	for _, k := range []string{"oauth.api.key", "oauth.api.secret"} {
		var v string
		if json.Unmarshal(p.Configuration[k], &v) != nil || v == "" || v == Redacted {
			return badRequest("configuration."+k+": a PATCH that changes store.url must send the new store's oauth.api.key and oauth.api.secret (the stored keys are never sent to another store)", "", "")
		}
	}
	return nil
}

// restore puts back an instance's previous record after a PATCH whose
// webhooks could not be registered, and restarts it.
func (s *Server) restore(in *instance, rec *Record, parsed *ceimport.Instance) {
	in.stop()
	if err := s.reg.put(rec); err != nil {
		s.log.Error("restoring the instance's previous record", "instance", in.id, "error", err)
	}
	in.mu.Lock()
	in.rec, in.parsed = rec, parsed
	in.mu.Unlock()
	mode := ""
	if parsed != nil {
		mode = parsed.Mode()
	}
	in.st.restart(mode)
	if parsed != nil {
		in.start()
	}
}

func credsDiffer(a, b *ceimport.Instance) bool {
	ak, as := a.Credentials()
	bk, bs := b.Credentials()
	return ak != bk || as != bs
}

// deleteInstance is DELETE /instances/{id}: stop the pipeline, remove the
// webhooks from the store, forget the instance and its state (dead letters
// stay on disk). It answers once that is done, listing any webhook that
// could not be removed.
func (s *Server) deleteInstance(w http.ResponseWriter, r *http.Request, in *instance) {
	in.opMu.Lock()
	defer in.opMu.Unlock()
	if s.get(in.id) == nil {
		s.fail(w, r, errStatus(http.StatusNotFound, "no instance with id %d", in.id))
		return
	}
	in.stop()
	_, parsed := in.snapshot()
	out := deleteJSON{ID: in.id, Deleted: true}
	if parsed != nil && parsed.Mode() == ModeWebhook {
		res := s.removeHooks(r.Context(), in, parsed)
		out.Webhooks = &res
		if !res.ok() {
			out.Message = fmt.Sprintf("instance %d deleted, but not every webhook could be removed from the store: remove them there", in.id)
			if res.Error != "" {
				out.Message += ": " + res.Error
			}
		}
	}
	if err := s.reg.delete(in.id); err != nil {
		// Still registered: it runs again rather than stay listed and dead.
		in.start()
		s.fail(w, r, errStatus(http.StatusInternalServerError, "removing the instance: %v", err))
		return
	}
	in.mu.Lock()
	in.visible = false
	in.mu.Unlock()
	s.remove(in.id)
	s.removeState(in)
	if out.Message == "" {
		out.Message = fmt.Sprintf("instance %d deleted", in.id)
	}
	s.log.Info("instance deleted", "instance", in.id)
	writeJSON(w, http.StatusOK, out)
}

type deleteJSON struct {
	ID       int64        `json:"id"`
	Deleted  bool         `json:"deleted"`
	Message  string       `json:"message"`
	Webhooks *hookRemoval `json:"webhooks,omitempty"`
}

// serveDelivery routes a WooCommerce delivery to the instance's receiver.
// WooCommerce sends no Authorization: the input checks the signature.
func (s *Server) serveDelivery(w http.ResponseWriter, r *http.Request, rest string) {
	id, err := strconv.ParseInt(rest, 10, 64)
	var in *instance
	if err == nil {
		s.mu.RLock()
		in = s.instances[id]
		s.mu.RUnlock()
	}
	if in == nil {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	in.serveDelivery(w, r)
}

// ---------------------------------------------------------------------------
// Answers

type elementJSON struct {
	Key  string `json:"key"`
	Name string `json:"name"`
}

// instanceJSON is an instance as Cloud Elements answers it, plus its
// status.
type instanceJSON struct {
	ID            int64                      `json:"id"`
	Name          string                     `json:"name"`
	Token         string                     `json:"token"`
	Element       elementJSON                `json:"element"`
	Tags          []string                   `json:"tags"`
	CreatedDate   string                     `json:"createdDate"`
	UpdatedDate   string                     `json:"updatedDate"`
	Configuration map[string]json.RawMessage `json:"configuration"`
	EventsEnabled bool                       `json:"eventsEnabled"`
	Disabled      bool                       `json:"disabled"`
	Status        Status                     `json:"status"`
}

func (s *Server) instanceJSON(in *instance) instanceJSON {
	rec, parsed := in.snapshot()
	out := instanceJSON{
		ID:            rec.ID,
		Token:         rec.Token,
		Element:       elementJSON{Key: ceimport.ElementKey, Name: elementName},
		Tags:          []string{},
		CreatedDate:   rec.Created.UTC().Format(time.RFC3339),
		UpdatedDate:   rec.Updated.UTC().Format(time.RFC3339),
		Configuration: redactedConfiguration(rec.Body),
		EventsEnabled: true,
		Status:        in.st.snapshot(),
	}
	if parsed != nil {
		out.Name = parsed.Name()
		if tags := parsed.Tags(); len(tags) > 0 {
			out.Tags = tags
		}
	}
	return out
}

// redactedConfiguration is the body's configuration as posted, every secret
// replaced by Redacted.
func redactedConfiguration(body json.RawMessage) map[string]json.RawMessage {
	var top struct {
		Configuration map[string]json.RawMessage `json:"configuration"`
	}
	_ = json.Unmarshal(body, &top)
	conf := top.Configuration
	if conf == nil {
		conf = map[string]json.RawMessage{}
	}
	for _, k := range ceimport.SecretKeys {
		if v, ok := conf[k]; ok && string(v) != `""` && string(v) != "null" {
			conf[k] = json.RawMessage(strconv.Quote(Redacted))
		}
	}
	return conf
}
