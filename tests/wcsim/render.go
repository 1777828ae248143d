package wcsim

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

func rnd(b []byte) { _, _ = rand.Read(b) }

// ---- seed derivations (records with ext == nil) ----

func seedEmail(id int64) string    { return fmt.Sprintf("customer%d@example.test", id) }
func seedUsername(id int64) string { return fmt.Sprintf("customer%d", id) }
func seedCouponCode(id int64) string {
	return fmt.Sprintf("seed%d", id)
}

// seedOrderKey derives a stable 13-character order key from the id.
func seedOrderKey(id int64) string {
	const al = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	x := uint64(id) + 0x9e3779b97f4a7c15
	var b [22]byte
	copy(b[:], "wc_order_")
	for i := 9; i < 22; i++ {
		x ^= x >> 30
		x *= 0xbf58476d1ce4e5b9
		x ^= x >> 27
		x *= 0x94d049bb133111eb
		x ^= x >> 31
		b[i] = al[x%uint64(len(al))]
	}
	return string(b[:])
}

func seedOrderQtyPrice(id int64) (int64, float64) { return 1 + id%3, float64(10 + id%40) }

func seedBilling(b []byte, id int64) []byte {
	b = append(b, `{"first_name":"Seed","last_name":"Buyer `...)
	b = strconv.AppendInt(b, id, 10)
	b = append(b, `","company":"","address_1":"","address_2":"","city":"","state":"","postcode":"","country":"US","email":"buyer`...)
	b = strconv.AppendInt(b, id, 10)
	return append(b, `@example.test","phone":""}`...)
}

// seedOrderCore fills the typed values of a seeded order (no overrides).
func seedOrderCore(r *record, e *recExt, items *[1]lineItem) {
	qty, price := seedOrderQtyPrice(r.id)
	items[0] = lineItem{id: r.aux, name: "Seed Widget", qty: qty, price: price,
		subtotal: price * float64(qty), total: price * float64(qty), sku: "SEED-WIDGET"}
	e.orderKey = seedOrderKey(r.id)
	e.items = items[:]
	st := orderStatuses[r.status]
	if st == "processing" || st == "completed" {
		e.datePaid = r.created
	}
	if st == "completed" {
		e.dateCompleted = r.created
	}
}

func seedOrderExt(r *record) *recExt {
	e := &recExt{}
	var items [1]lineItem
	seedOrderCore(r, e, &items)
	e.items = []lineItem{items[0]}
	e.ov = map[string][]byte{
		"total":                appendStr(nil, fmt2(items[0].total)),
		"payment_method":       appendStr(nil, "bacs"),
		"payment_method_title": appendStr(nil, "Direct bank transfer"),
		"created_via":          appendStr(nil, "rest-api"),
		"billing":              seedBilling(nil, r.id),
	}
	return e
}

func seedProductExt(r *record) *recExt {
	return &recExt{
		name:         fmt.Sprintf("Seed Product %d", r.id),
		slug:         fmt.Sprintf("seed-product-%d", r.id),
		sku:          fmt.Sprintf("SEED-%d", r.id),
		regularPrice: fmt.Sprintf("%d.00", 5+r.id%95),
	}
}

func seedCouponExt(r *record) *recExt {
	return &recExt{code: seedCouponCode(r.id), amount: "10.00",
		ov: map[string][]byte{"discount_type": appendStr(nil, "percent")}}
}

func seedCustomerExt(r *record) *recExt {
	return &recExt{email: seedEmail(r.id), first: "Seed", last: fmt.Sprintf("Customer %d", r.id), username: seedUsername(r.id)}
}

func (s *Store) productExt(r *record) *recExt {
	if r.ext != nil {
		return r.ext
	}
	return seedProductExt(r)
}

func (s *Store) customerExt(r *record) *recExt {
	if r.ext != nil {
		return r.ext
	}
	return seedCustomerExt(r)
}

func (s *Store) couponCode(r *record) string {
	if r.ext != nil {
		return r.ext.code
	}
	return seedCouponCode(r.id)
}

func productPrice(e *recExt) string {
	if e.salePrice != "" {
		return e.salePrice
	}
	return e.regularPrice
}

func extOf(r *record) *recExt {
	if r.ext != nil {
		return r.ext
	}
	switch r.kind {
	case kindOrder:
		return seedOrderExt(r)
	case kindProduct:
		return seedProductExt(r)
	case kindCoupon:
		return seedCouponExt(r)
	default:
		return seedCustomerExt(r)
	}
}

// ---- rendering ----

// escHome is the home URL JSON-escaped (without quotes).
func (s *Store) escHome() string {
	if s.escHomeS == "" || s.escFor != s.home {
		b := appendStr(nil, s.home)
		s.escHomeS, s.escFor = string(b[1:len(b)-1]), s.home
	}
	return s.escHomeS
}

func (s *Store) render(b []byte, def *resDef, r *record, mask fieldMask) []byte {
	switch def.kind {
	case kindOrder:
		return s.renderOrder(b, r, mask)
	case kindProduct:
		return s.renderProduct(b, r, mask)
	case kindCoupon:
		return s.renderCoupon(b, r, mask)
	default:
		return s.renderCustomer(b, r, mask)
	}
}

func appendMeta(b []byte, meta []metaEntry) []byte {
	b = append(b, '[')
	for i, m := range meta {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":`...)
		b = strconv.AppendInt(b, m.id, 10)
		b = append(b, `,"key":`...)
		b = appendStr(b, m.key)
		b = append(b, `,"value":`...)
		b = append(b, m.value...)
		b = append(b, '}')
	}
	return append(b, ']')
}

func appendLinks(b []byte, h, res string, id int64, extra func([]byte) []byte) []byte {
	b = append(b, `{"self":[{"href":"`...)
	b = append(b, h...)
	b = append(b, `\/wp-json\/wc\/v3\/`...)
	b = append(b, res...)
	b = append(b, `\/`...)
	b = strconv.AppendInt(b, id, 10)
	b = append(b, `","targetHints":{"allow":["GET","POST","PUT","PATCH","DELETE"]}}],"collection":[{"href":"`...)
	b = append(b, h...)
	b = append(b, `\/wp-json\/wc\/v3\/`...)
	b = append(b, res...)
	b = append(b, `"}]`...)
	if extra != nil {
		b = extra(b)
	}
	return append(b, '}')
}

var currencySymbols = map[string]string{"USD": "$", "EUR": "€", "GBP": "£", "AUD": "$", "CAD": "$", "JPY": "¥", "CHF": "CHF", "PLN": "zł"}

const emptyOrderAddress = `{"first_name":"","last_name":"","company":"","address_1":"","address_2":"","city":"","state":"","postcode":"","country":"","email":"","phone":""}`
const emptyOrderShipping = `{"first_name":"","last_name":"","company":"","address_1":"","address_2":"","city":"","state":"","postcode":"","country":"","phone":""}`

func (s *Store) renderOrder(b []byte, r *record, mask fieldMask) []byte {
	var (
		e      = r.ext
		seeded = e == nil
		se     recExt
		items  [1]lineItem
		total  string
	)
	if seeded {
		seedOrderCore(r, &se, &items)
		e = &se
		total = fmt2(items[0].total)
	} else if total = ovString(e.ov, "total"); total == "" {
		total = "0.00"
	}
	off := s.off
	h := s.escHome()
	st := orderStatuses[r.status]
	w := objw{b: b, mask: mask, ov: e.ov}
	w.open()
	if w.key("id") {
		w.b = strconv.AppendInt(w.b, r.id, 10)
	}
	if w.key("parent_id") {
		w.b = append(w.b, '0')
	}
	if w.key("status") {
		w.b = appendStr(w.b, st)
	}
	if w.key("currency") {
		w.b = append(w.b, `"USD"`...)
	}
	if w.key("version") {
		w.b = append(w.b, `"11.0.1"`...)
	}
	if w.key("prices_include_tax") {
		w.b = append(w.b, "false"...)
	}
	if w.key("date_created") {
		w.b = appendDate(w.b, r.created, off)
	}
	if w.key("date_modified") {
		w.b = appendDate(w.b, r.modified, off)
	}
	for _, k := range [...]string{"discount_total", "discount_tax", "shipping_total", "shipping_tax", "cart_tax"} {
		if w.key(k) {
			w.b = append(w.b, `"0.00"`...)
		}
	}
	if w.key("total") {
		w.b = appendStr(w.b, total)
	}
	if w.key("total_tax") {
		w.b = append(w.b, `"0.00"`...)
	}
	if w.key("customer_id") {
		w.b = strconv.AppendInt(w.b, e.customerID, 10)
	}
	if w.key("order_key") {
		w.b = appendStr(w.b, e.orderKey)
	}
	if w.key("billing") {
		if seeded {
			w.b = seedBilling(w.b, r.id)
		} else {
			w.b = append(w.b, emptyOrderAddress...)
		}
	}
	if w.key("shipping") {
		w.b = append(w.b, emptyOrderShipping...)
	}
	for _, k := range [...]string{"payment_method", "payment_method_title", "transaction_id", "customer_ip_address", "customer_user_agent", "created_via", "customer_note"} {
		if w.key(k) {
			switch {
			case seeded && k == "payment_method":
				w.b = append(w.b, `"bacs"`...)
			case seeded && k == "payment_method_title":
				w.b = append(w.b, `"Direct bank transfer"`...)
			case seeded && k == "created_via":
				w.b = append(w.b, `"rest-api"`...)
			default:
				w.b = append(w.b, `""`...)
			}
		}
	}
	if w.key("date_completed") {
		w.b = appendDate(w.b, e.dateCompleted, off)
	}
	if w.key("date_paid") {
		w.b = appendDate(w.b, e.datePaid, off)
	}
	if w.key("cart_hash") {
		w.b = append(w.b, `""`...)
	}
	if w.key("number") {
		w.b = append(w.b, '"')
		w.b = strconv.AppendInt(w.b, r.id, 10)
		w.b = append(w.b, '"')
	}
	if w.key("meta_data") {
		w.b = appendMeta(w.b, e.meta)
	}
	if w.key("line_items") {
		w.b = append(w.b, '[')
		for i, it := range e.items {
			if i > 0 {
				w.b = append(w.b, ',')
			}
			w.b = append(w.b, `{"id":`...)
			w.b = strconv.AppendInt(w.b, it.id, 10)
			w.b = append(w.b, `,"name":`...)
			w.b = appendStr(w.b, it.name)
			w.b = append(w.b, `,"product_id":`...)
			w.b = strconv.AppendInt(w.b, it.productID, 10)
			w.b = append(w.b, `,"variation_id":`...)
			w.b = strconv.AppendInt(w.b, it.variationID, 10)
			w.b = append(w.b, `,"quantity":`...)
			w.b = strconv.AppendInt(w.b, it.qty, 10)
			w.b = append(w.b, `,"tax_class":"","subtotal":`...)
			w.b = appendStr(w.b, fmt2(it.subtotal))
			w.b = append(w.b, `,"subtotal_tax":"0.00","total":`...)
			w.b = appendStr(w.b, fmt2(it.total))
			w.b = append(w.b, `,"total_tax":"0.00","taxes":[],"meta_data":`...)
			w.b = appendMeta(w.b, it.meta)
			w.b = append(w.b, `,"sku":`...)
			w.b = appendStr(w.b, it.sku)
			w.b = append(w.b, `,"global_unique_id":"","price":`...)
			w.b = appendPHPFloat(w.b, it.price)
			w.b = append(w.b, `,"image":{"id":"","src":""},"parent_name":null}`...)
		}
		w.b = append(w.b, ']')
	}
	for _, k := range [...]string{"tax_lines", "shipping_lines", "fee_lines", "coupon_lines", "refunds"} {
		if w.key(k) {
			w.b = append(w.b, "[]"...)
		}
	}
	if w.key("payment_url") {
		w.b = append(w.b, '"')
		w.b = append(w.b, h...)
		w.b = append(w.b, `\/checkout\/order-pay\/`...)
		w.b = strconv.AppendInt(w.b, r.id, 10)
		w.b = append(w.b, `\/?pay_for_order=true&key=`...)
		w.b = append(w.b, e.orderKey...)
		w.b = append(w.b, '"')
	}
	if w.key("is_editable") {
		w.b = strconv.AppendBool(w.b, st == "pending" || st == "on-hold" || st == "auto-draft")
	}
	if w.key("needs_payment") {
		w.b = strconv.AppendBool(w.b, (st == "pending" || st == "failed") && parseAmount(total) > 0)
	}
	if w.key("needs_processing") {
		w.b = append(w.b, "true"...)
	}
	if w.key("date_created_gmt") {
		w.b = appendDate(w.b, r.created, 0)
	}
	if w.key("date_modified_gmt") {
		w.b = appendDate(w.b, r.modified, 0)
	}
	if w.key("date_completed_gmt") {
		w.b = appendDate(w.b, e.dateCompleted, 0)
	}
	if w.key("date_paid_gmt") {
		w.b = appendDate(w.b, e.datePaid, 0)
	}
	if w.key("currency_symbol") {
		cur := ovString(e.ov, "currency")
		if cur == "" {
			cur = "USD"
		}
		sym, ok := currencySymbols[cur]
		if !ok {
			sym = cur
		}
		w.b = appendStr(w.b, sym)
	}
	if w.key("_links") {
		w.b = appendLinks(w.b, h, "orders", r.id, func(b []byte) []byte {
			b = append(b, `,"email_templates":[{"embeddable":true,"href":"`...)
			b = append(b, h...)
			b = append(b, `\/wp-json\/wc\/v3\/orders\/`...)
			b = strconv.AppendInt(b, r.id, 10)
			b = append(b, `\/actions\/email_templates"}]`...)
			if e.customerID > 0 {
				b = append(b, `,"customer":[{"href":"`...)
				b = append(b, h...)
				b = append(b, `\/wp-json\/wc\/v3\/customers\/`...)
				b = strconv.AppendInt(b, e.customerID, 10)
				b = append(b, `"}]`...)
			}
			return b
		})
	}
	return w.close()
}

func priceHTML(price string) string {
	if price == "" {
		return ""
	}
	return `<span class="woocommerce-Price-amount amount"><bdi><span class="woocommerce-Price-currencySymbol" translate="no">&#36;</span>` +
		fmt2(parseAmount(price)) + `</bdi></span>`
}

func (s *Store) renderProduct(b []byte, r *record, mask fieldMask) []byte {
	e := extOf(r)
	off := s.off
	h := s.escHome()
	st := postStatuses[r.status]
	price := productPrice(e)
	w := objw{b: b, mask: mask, ov: e.ov}
	w.open()
	if w.key("id") {
		w.b = strconv.AppendInt(w.b, r.id, 10)
	}
	if w.key("name") {
		w.b = appendStr(w.b, e.name)
	}
	if w.key("slug") {
		w.b = appendStr(w.b, e.slug)
	}
	if w.key("permalink") {
		w.b = append(w.b, '"')
		w.b = append(w.b, h...)
		if st == "publish" && e.slug != "" {
			w.b = append(w.b, `\/product\/`...)
			w.b = append(w.b, e.slug...)
			w.b = append(w.b, `\/`...)
		} else {
			w.b = append(w.b, `\/?post_type=product&p=`...)
			w.b = strconv.AppendInt(w.b, r.id, 10)
		}
		w.b = append(w.b, '"')
	}
	w.dates(r.created, r.modified, off)
	if w.key("type") {
		w.b = append(w.b, `"simple"`...)
	}
	if w.key("status") {
		w.b = appendStr(w.b, st)
	}
	if w.key("featured") {
		w.b = append(w.b, "false"...)
	}
	if w.key("catalog_visibility") {
		w.b = append(w.b, `"visible"`...)
	}
	if w.key("description") {
		w.b = append(w.b, `""`...)
	}
	if w.key("short_description") {
		w.b = append(w.b, `""`...)
	}
	if w.key("sku") {
		w.b = appendStr(w.b, e.sku)
	}
	if w.key("price") {
		w.b = appendStr(w.b, price)
	}
	if w.key("regular_price") {
		w.b = appendStr(w.b, e.regularPrice)
	}
	if w.key("sale_price") {
		w.b = appendStr(w.b, e.salePrice)
	}
	for _, k := range [...]string{"date_on_sale_from", "date_on_sale_from_gmt", "date_on_sale_to", "date_on_sale_to_gmt"} {
		if w.key(k) {
			w.b = append(w.b, "null"...)
		}
	}
	if w.key("on_sale") {
		w.b = strconv.AppendBool(w.b, e.salePrice != "")
	}
	if w.key("purchasable") {
		w.b = strconv.AppendBool(w.b, price != "")
	}
	w.b = s.productTail(&w, r, e, price, h)
	return w.close()
}

func (s *Store) productTail(w *objw, r *record, e *recExt, price, h string) []byte {
	simple := []struct{ k, v string }{
		{"total_sales", "0"}, {"virtual", "false"}, {"downloadable", "false"}, {"downloads", "[]"},
		{"download_limit", "-1"}, {"download_expiry", "-1"}, {"external_url", `""`}, {"button_text", `""`},
		{"tax_status", `"taxable"`}, {"tax_class", `""`}, {"manage_stock", "false"}, {"stock_quantity", "null"},
		{"backorders", `"no"`}, {"backorders_allowed", "false"}, {"backordered", "false"}, {"low_stock_amount", "null"},
		{"sold_individually", "false"}, {"weight", `""`}, {"dimensions", `{"length":"","width":"","height":""}`},
		{"shipping_required", "true"}, {"shipping_taxable", "true"}, {"shipping_class", `""`}, {"shipping_class_id", "0"},
		{"reviews_allowed", "true"}, {"average_rating", `"0.00"`}, {"rating_count", "0"}, {"upsell_ids", "[]"},
		{"cross_sell_ids", "[]"}, {"parent_id", "0"}, {"purchase_note", `""`},
		{"categories", `[{"id":15,"name":"Uncategorized","slug":"uncategorized"}]`}, {"brands", "[]"}, {"tags", "[]"},
		{"images", "[]"}, {"attributes", "[]"}, {"default_attributes", "[]"}, {"variations", "[]"},
		{"grouped_products", "[]"}, {"menu_order", "0"},
	}
	for _, f := range simple {
		if w.key(f.k) {
			w.b = append(w.b, f.v...)
		}
	}
	if w.key("price_html") {
		w.b = appendStr(w.b, priceHTML(price))
	}
	if w.key("related_ids") {
		w.b = append(w.b, "[]"...)
	}
	if w.key("meta_data") {
		w.b = appendMeta(w.b, e.meta)
	}
	if w.key("stock_status") {
		w.b = append(w.b, `"instock"`...)
	}
	if w.key("has_options") {
		w.b = append(w.b, "false"...)
	}
	if w.key("post_password") {
		w.b = append(w.b, `""`...)
	}
	if w.key("global_unique_id") {
		w.b = append(w.b, `""`...)
	}
	if w.key("_links") {
		w.b = appendLinks(w.b, h, "products", r.id, nil)
	}
	return w.b
}

func (s *Store) renderCoupon(b []byte, r *record, mask fieldMask) []byte {
	e := extOf(r)
	off := s.off
	w := objw{b: b, mask: mask, ov: e.ov}
	w.open()
	if w.key("id") {
		w.b = strconv.AppendInt(w.b, r.id, 10)
	}
	if w.key("code") {
		w.b = appendStr(w.b, e.code)
	}
	if w.key("amount") {
		w.b = appendStr(w.b, e.amount)
	}
	if w.key("status") {
		w.b = appendStr(w.b, postStatuses[r.status])
	}
	w.dates(r.created, r.modified, off)
	simple := []struct{ k, v string }{
		{"discount_type", `"fixed_cart"`}, {"description", `""`}, {"date_expires", "null"}, {"date_expires_gmt", "null"},
		{"usage_count", "0"}, {"individual_use", "false"}, {"product_ids", "[]"}, {"excluded_product_ids", "[]"},
		{"usage_limit", "null"}, {"usage_limit_per_user", "null"}, {"limit_usage_to_x_items", "null"},
		{"free_shipping", "false"}, {"product_categories", "[]"}, {"excluded_product_categories", "[]"},
		{"exclude_sale_items", "false"}, {"minimum_amount", `"0.00"`}, {"maximum_amount", `"0.00"`},
		{"email_restrictions", "[]"}, {"used_by", "[]"},
	}
	for _, f := range simple {
		if w.key(f.k) {
			w.b = append(w.b, f.v...)
		}
	}
	if w.key("meta_data") {
		w.b = appendMeta(w.b, e.meta)
	}
	if w.key("_links") {
		w.b = appendLinks(w.b, s.escHome(), "coupons", r.id, nil)
	}
	return w.close()
}

func avatarURL(email string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(email))))
	return "https://secure.gravatar.com/avatar/" + hex.EncodeToString(sum[:]) + "?s=96&d=mm&r=g"
}

func (s *Store) renderCustomer(b []byte, r *record, mask fieldMask) []byte {
	e := extOf(r)
	off := s.off
	w := objw{b: b, mask: mask, ov: e.ov}
	w.open()
	if w.key("id") {
		w.b = strconv.AppendInt(w.b, r.id, 10)
	}
	w.dates(r.created, r.modified, off)
	if w.key("email") {
		w.b = appendStr(w.b, e.email)
	}
	if w.key("first_name") {
		w.b = appendStr(w.b, e.first)
	}
	if w.key("last_name") {
		w.b = appendStr(w.b, e.last)
	}
	if w.key("role") {
		w.b = appendStr(w.b, userRoles[r.status])
	}
	if w.key("username") {
		w.b = appendStr(w.b, e.username)
	}
	if w.key("billing") {
		w.b = append(w.b, `{"first_name":"","last_name":"","company":"","address_1":"","address_2":"","city":"","postcode":"","country":"","state":"","email":"","phone":""}`...)
	}
	if w.key("shipping") {
		w.b = append(w.b, `{"first_name":"","last_name":"","company":"","address_1":"","address_2":"","city":"","postcode":"","country":"","state":"","phone":""}`...)
	}
	if w.key("is_paying_customer") {
		w.b = append(w.b, "false"...)
	}
	if w.key("avatar_url") {
		w.b = appendStr(w.b, avatarURL(e.email))
	}
	if w.key("meta_data") {
		w.b = appendMeta(w.b, e.meta)
	}
	if w.key("_links") {
		w.b = appendLinks(w.b, s.escHome(), "customers", r.id, nil)
	}
	return w.close()
}
