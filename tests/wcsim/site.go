package wcsim

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
)

// Versions the simulated store reports.
const (
	wcVersion      = "11.0.1"
	wpVersion      = "7.1"
	phpVersion     = "8.2.36"
	serverSoftware = "Apache/2.4.71 (Debian) OpenSSL/3.0.22 PHP/" + phpVersion
	siteName       = "WooCommerce Simulator"
)

// restURL is WordPress' rest_url(path): /wp-json/path with pretty
// permalinks, /index.php?rest_route=path without.
func (s *Store) restURL(path string) string {
	if s.cfg().noPrettyPermalinks {
		return s.home + "/index.php?rest_route=" + path
	}
	return s.home + "/wp-json" + path
}

// jsonObj is a JSON object that keeps its key order (PHP arrays do).
type jsonObj []jsonKV

type jsonKV struct {
	k string
	v any
}

func (o jsonObj) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, kv := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(kv.k)
		b.Write(k)
		b.WriteByte(':')
		v, err := json.Marshal(kv.v)
		if err != nil {
			return nil, err
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// phpEncode renders v as json_encode would (escaped slashes, key order kept).
func phpEncode(v any) []byte {
	raw, err := json.Marshal(v)
	if err != nil {
		panic("wcsim: encode site data: " + err.Error()) // static data: a bug
	}
	b, err := phpJSON(raw)
	if err != nil {
		panic("wcsim: encode site data: " + err.Error())
	}
	return b
}

// indexRoutes are the routes the REST index lists (a realistic subset).
var indexRoutes = []struct {
	route, namespace string
	methods          []string
}{
	{"/", "", []string{"GET"}},
	{"/wc/v3", "wc/v3", []string{"GET"}},
	{"/wc/v3/coupons", "wc/v3", []string{"GET", "POST"}},
	{"/wc/v3/coupons/(?P<id>[\\d]+)", "wc/v3", []string{"GET", "POST", "PUT", "PATCH", "DELETE"}},
	{"/wc/v3/customers", "wc/v3", []string{"GET", "POST"}},
	{"/wc/v3/customers/(?P<id>[\\d]+)", "wc/v3", []string{"GET", "POST", "PUT", "PATCH", "DELETE"}},
	{"/wc/v3/orders", "wc/v3", []string{"GET", "POST"}},
	{"/wc/v3/orders/(?P<id>[\\d]+)", "wc/v3", []string{"GET", "POST", "PUT", "PATCH", "DELETE"}},
	{"/wc/v3/products", "wc/v3", []string{"GET", "POST"}},
	{"/wc/v3/products/(?P<id>[\\d]+)", "wc/v3", []string{"GET", "POST", "PUT", "PATCH", "DELETE"}},
	{"/wc/v3/system_status", "wc/v3", []string{"GET"}},
	{"/wc/v3/webhooks", "wc/v3", []string{"GET", "POST"}},
	{"/wc/v3/webhooks/(?P<id>[\\d]+)", "wc/v3", []string{"GET", "POST", "PUT", "PATCH", "DELETE"}},
	{"/wc/store/v1", "wc/store/v1", []string{"GET"}},
	{"/wp/v2", "wp/v2", []string{"GET"}},
}

// serveIndex answers GET /wp-json/ (or ?rest_route=/) like
// WP_REST_Server::get_index: site data, namespaces, authentication (the
// application-passwords endpoint only when is_ssl()), routes. No capture of
// it exists; the field order follows WordPress' get_index.
func (s *Store) serveIndex(w http.ResponseWriter, isSSL bool) {
	gmt := strconv.FormatFloat(s.opts.UTCOffset.Hours(), 'f', -1, 64)
	var auth any = []any{}
	if isSSL {
		auth = jsonObj{{"application-passwords", jsonObj{{"endpoints", jsonObj{{"authorization", s.home + "/wp-admin/authorize-application.php"}}}}}}
	}
	routes := jsonObj{}
	for _, rt := range indexRoutes {
		var endpoints []any
		for _, m := range rt.methods {
			if m == "PUT" || m == "PATCH" {
				continue // WordPress lists POST, PUT, PATCH as one endpoint
			}
			ms := []string{m}
			if m == "POST" && len(rt.methods) > 2 {
				ms = []string{"POST", "PUT", "PATCH"}
			}
			endpoints = append(endpoints, jsonObj{{"methods", ms}, {"args", []any{}}})
		}
		r := jsonObj{{"namespace", rt.namespace}, {"methods", rt.methods}, {"endpoints", endpoints}}
		if !strings.Contains(rt.route, "(?P<") {
			r = append(r, jsonKV{"_links", jsonObj{{"self", []any{jsonObj{{"href", s.restURL(rt.route)}}}}}})
		}
		routes = append(routes, jsonKV{rt.route, r})
	}
	idx := jsonObj{
		{"name", siteName},
		{"description", "A simulated WooCommerce store (wcsim)"},
		{"url", s.home},
		{"home", s.home},
		{"gmt_offset", gmt},
		{"timezone_string", ""},
		{"page_for_posts", 0},
		{"page_on_front", 0},
		{"show_on_front", "posts"},
		{"namespaces", []string{"oembed/1.0", "wc/store/v1", "wc/store", "wc/v3", "wc/v2", "wc/v1", "wc-admin", "wc-analytics", "wc-telemetry", "wp/v2", "wp-site-health/v1", "wp-block-editor/v1"}},
		{"authentication", auth},
		{"routes", routes},
		{"site_logo", 0},
		{"site_icon", 0},
		{"site_icon_url", ""},
		{"_links", jsonObj{{"help", []any{jsonObj{{"href", "https://developer.wordpress.org/rest-api/"}}}}}},
	}
	w.Header().Set("Allow", "GET")
	writeBody(w, 200, phpEncode(idx))
}

// serveSystemStatus answers GET /wc/v3/system_status
// (WC_REST_System_Status_V2_Controller) with a realistic subset: every
// environment field, the settings, security, a few plugins and post type
// counts. No capture of it exists; field names and order follow
// WooCommerce's get_environment_info_per_fields and get_settings. Note that
// settings.api_enabled is the legacy REST API option (false on a current
// store; wc/v3 works regardless), and there is no site timezone here: PHP's
// default_timezone is always UTC under WordPress, the site's offset is in the
// REST index (gmt_offset, timezone_string).
func (s *Store) serveSystemStatus(w http.ResponseWriter, req *request) {
	if req.key == nil {
		s.writeErr(w, permErr("woocommerce_rest_cannot_view", "Sorry, you cannot list resources."), "")
		return
	}
	s.mu.RLock()
	counts := map[string]int{}
	for n, c := range s.colls {
		counts[n] = c.count
	}
	s.mu.RUnlock()
	env := jsonObj{
		{"home_url", s.home},
		{"site_url", s.home},
		{"version", wcVersion},
		{"log_directory", "/var/www/html/wp-content/uploads/wc-logs/"},
		{"log_directory_writable", true},
		{"wp_version", wpVersion},
		{"wp_multisite", false},
		{"wp_memory_limit", 268435456},
		{"wp_debug_mode", false},
		{"wp_cron", true},
		{"language", "en_US"},
		{"external_object_cache", nil},
		{"server_info", serverSoftware},
		{"php_version", phpVersion},
		{"php_post_max_size", 8388608},
		{"php_max_execution_time", 30},
		{"php_max_input_vars", 1000},
		{"curl_version", "8.14.1, OpenSSL/3.0.22"},
		{"suhosin_installed", false},
		{"max_upload_size", 2097152},
		{"mysql_version", "10.11.14"},
		{"mysql_version_string", "10.11.14-MariaDB-0+deb12u2"},
		{"default_timezone", "UTC"},
		{"fsockopen_or_curl_enabled", true},
		{"soapclient_enabled", false},
		{"domdocument_enabled", true},
		{"gzip_enabled", true},
		{"mbstring_enabled", true},
		{"remote_post_successful", true},
		{"remote_post_response", 200},
		{"remote_get_successful", true},
		{"remote_get_response", 200},
	}
	plugin := jsonObj{{"plugin", "woocommerce/woocommerce.php"}, {"name", "WooCommerce"}, {"version", wcVersion},
		{"version_latest", wcVersion}, {"url", "https://woocommerce.com/"}, {"author_name", "Automattic"},
		{"author_url", "https://woocommerce.com"}, {"network_activated", false}}
	settings := jsonObj{
		{"api_enabled", false},
		{"force_ssl", false},
		{"currency", "USD"},
		{"currency_symbol", "&#36;"},
		{"currency_position", "left"},
		{"thousand_separator", ","},
		{"decimal_separator", "."},
		{"number_of_decimals", 2},
		{"geolocation_enabled", false},
		{"taxonomies", jsonObj{{"external", "external"}, {"grouped", "grouped"}, {"simple", "simple"}, {"variable", "variable"}}},
		{"product_visibility_terms", jsonObj{{"exclude-from-catalog", "exclude-from-catalog"}, {"exclude-from-search", "exclude-from-search"},
			{"featured", "featured"}, {"outofstock", "outofstock"}, {"rated-1", "rated-1"}, {"rated-2", "rated-2"},
			{"rated-3", "rated-3"}, {"rated-4", "rated-4"}, {"rated-5", "rated-5"}}},
		{"woocommerce_com_connected", "no"},
		{"enforce_approved_download_dirs", true},
		{"order_datastore", "Automattic\\WooCommerce\\Internal\\DataStores\\Orders\\OrdersTableDataStore"},
		{"HPOS_feature_screen_enabled", true},
		{"HPOS_enabled", true},
		{"HPOS_sync_enabled", false},
	}
	typeCount := func(t string, n int) jsonObj { return jsonObj{{"type", t}, {"count", strconv.Itoa(n)}} }
	status := jsonObj{
		{"environment", env},
		{"database", jsonObj{{"wc_database_version", wcVersion}, {"database_prefix", "wp_"}, {"maxmind_geoip_database", ""},
			{"database_tables", jsonObj{{"woocommerce", jsonObj{}}, {"other", jsonObj{}}}},
			{"database_size", jsonObj{{"data", 2.5}, {"index", 1.2}}}}},
		{"active_plugins", []any{plugin}},
		{"inactive_plugins", []any{}},
		{"dropins_mu_plugins", jsonObj{{"dropins", []any{}}, {"mu_plugins", []any{}}}},
		{"theme", jsonObj{{"name", "Storefront"}, {"version", "4.6.1"}, {"version_latest", "4.6.1"},
			{"author_url", "https://woocommerce.com/"}, {"is_child_theme", false}, {"has_woocommerce_support", true},
			{"has_woocommerce_file", false}, {"has_outdated_templates", false}, {"overrides", []any{}},
			{"parent_name", ""}, {"parent_version", ""}, {"parent_version_latest", ""}, {"parent_author_url", ""}}},
		{"settings", settings},
		{"security", jsonObj{{"secure_connection", strings.HasPrefix(s.home, "https://")}, {"hide_errors", true}}},
		{"pages", []any{}},
		{"post_type_counts", []any{typeCount("page", 5), typeCount("post", 1), typeCount("product", counts[Products]),
			typeCount("shop_coupon", counts[Coupons]), typeCount("shop_order_placehold", counts[Orders])}},
	}
	body := phpEncode(status)
	if m := fieldsOf(req); m != nil {
		body = filterObject(body, m)
	}
	s.writeOK(w, 200, body, "GET")
}

// serveWP404 is the theme's 404 page WordPress serves for /wp-json/... when
// permalinks are plain: no rewrite rule maps the path to the REST API.
func (s *Store) serveWP404(w http.ResponseWriter) {
	api := s.restURL("/")
	h := w.Header()
	h.Set("Date", s.Now().UTC().Format(http.TimeFormat))
	h.Set("Server", serverSoftware)
	h.Set("X-Powered-By", "PHP/"+phpVersion)
	h.Set("Link", "<"+api+">; rel=\"https://api.w.org/\"")
	noCache(h)
	h.Set("Content-Type", "text/html; charset=UTF-8")
	body := "<!DOCTYPE html>\n<html lang=\"en-US\">\n<head>\n<meta charset=\"UTF-8\" />\n" +
		"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\" />\n" +
		"<meta name='robots' content='noindex, follow' />\n" +
		"<title>Page not found &#8211; " + siteName + "</title>\n" +
		"<link rel=\"https://api.w.org/\" href=\"" + api + "\" />\n" +
		"</head>\n<body class=\"error404 wp-theme-storefront woocommerce-no-js\">\n" +
		"<main id=\"main\" class=\"site-main\"><div class=\"error-404 not-found\"><h1 class=\"page-title\">Oops! That page can&rsquo;t be found.</h1>\n" +
		"<p>Nothing was found at this location. Try searching, or check out the links below.</p></div></main>\n</body>\n</html>\n"
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusNotFound)
	_, _ = w.Write([]byte(body))
}
