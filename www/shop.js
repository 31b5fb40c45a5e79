/* darkroom demo shop: the catalogue, a cart in localStorage, checkout.
 *
 * GET  /api/catalogue  -> {currency, currencies, photos[], products[]}
 * POST /api/cart/quote <- {items, currency, country, discount_code,
 *                          shipping_method}
 *                      -> the priced cart: {country, tax_inclusive, physical,
 *                         lines[], discount, shipping: {amount, method, name,
 *                         options?}, subtotal, discount_amount,
 *                         shipping_amount, tax_amount, total}
 * POST /api/checkout   <- the same, with email; an Idempotency-Key per cart
 *                         submission -> 201 {order, checkout_url, status_url}
 * Errors are {"error":{"code","message"}}.  Money is integer minor units.
 * Every sum shown in the cart (shipping, discount, VAT, total) is the
 * server's quote, asked again whenever the cart, the country, the shipping
 * method or the code change; nothing is added up here.
 * Plain ES2017, no build step.
 */
(function () {
  'use strict';

  var CART_KEY = 'darkroom.cart';
  var CURRENCY_KEY = 'darkroom.currency';
  var EMAIL_KEY = 'darkroom.email';
  var ORDERS_KEY = 'darkroom.orders';
  var COUNTRY_KEY = 'darkroom.country';
  var MAX_QTY = 99;
  // offered when the shop names no list of its own (quote "countries")
  var COUNTRIES = ['GB', 'IE', 'US', 'CA', 'AU', 'NZ', 'FR', 'DE', 'NL', 'BE',
    'LU', 'ES', 'PT', 'IT', 'AT', 'CH', 'DK', 'SE', 'NO', 'FI', 'PL', 'CZ', 'JP'];

  var state = { catalogue: null, photos: {}, products: {}, currency: 'GBP', cart: [],
    country: null, method: null, code: null, quote: null, quoteError: null, quoting: 0 };

  function $(id) { return document.getElementById(id); }

  function load(key, fallback) {
    try {
      var v = JSON.parse(localStorage.getItem(key));
      return v === null ? fallback : v;
    } catch (e) { return fallback; }
  }
  function save(key, value) {
    try { localStorage.setItem(key, JSON.stringify(value)); } catch (e) { /* private mode */ }
  }

  var formatters = {};
  function money(amount, currency) {
    if (typeof amount !== 'number') return '–';
    var f = formatters[currency];
    if (!f) {
      f = formatters[currency] = new Intl.NumberFormat(undefined,
        { style: 'currency', currency: currency });
    }
    var digits = f.resolvedOptions().maximumFractionDigits;
    return f.format(amount / Math.pow(10, digits));
  }

  function priceOf(productId, currency) {
    var p = state.products[productId];
    return p && p.prices && typeof p.prices[currency] === 'number' ? p.prices[currency] : null;
  }

  function el(tag, props, children) {
    var e = document.createElement(tag);
    Object.keys(props || {}).forEach(function (k) {
      if (k === 'text') e.textContent = props[k];
      else if (k === 'class') e.className = props[k];
      else e.setAttribute(k, props[k]);
    });
    (children || []).forEach(function (c) { if (c) e.appendChild(c); });
    return e;
  }

  async function api(method, path, body, headers) {
    var opts = { method: method, headers: { 'Accept': 'application/json' } };
    Object.keys(headers || {}).forEach(function (k) { opts.headers[k] = headers[k]; });
    if (body !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    var res = await fetch(path, opts);
    var data = null;
    try { data = await res.json(); } catch (e) { /* not JSON */ }
    if (!res.ok) {
      var msg = data && data.error && data.error.message
        ? data.error.message : 'The server answered ' + res.status + '.';
      var err = new Error(msg);
      err.code = data && data.error && data.error.code;
      err.status = res.status;
      err.data = data;
      throw err;
    }
    return data;
  }

  /* ---------------------------------------------------------------- catalogue */

  function renderCurrencies() {
    var sel = $('currency');
    sel.textContent = '';
    (state.catalogue.currencies || [state.currency]).forEach(function (c) {
      sel.appendChild(el('option', { value: c, text: c }));
    });
    sel.value = state.currency;
  }

  function renderPhotos() {
    var grid = $('photos');
    var tpl = $('photo-card');
    grid.textContent = '';
    state.catalogue.photos.forEach(function (photo) {
      var card = tpl.content.firstElementChild.cloneNode(true);
      var img = card.querySelector('img');
      if (photo.image) {
        img.src = photo.image;
        img.alt = photo.title;
        img.addEventListener('error', function () { img.parentNode.classList.add('missing'); img.remove(); });
      } else {
        img.parentNode.classList.add('missing');
        img.remove();
      }
      card.querySelector('.title').textContent = photo.title;
      card.querySelector('.desc').textContent = photo.description || '';
      var form = card.querySelector('form');
      var select = card.querySelector('.product');
      var qty = card.querySelector('.qty');
      var priceEl = card.querySelector('.price');
      var detail = card.querySelector('.detail');
      var add = card.querySelector('.add');
      var id = 'p-' + photo.id;
      select.id = id + '-product';
      qty.id = id + '-qty';
      qty.max = MAX_QTY;
      (photo.products || []).forEach(function (pid) {
        var p = state.products[pid];
        if (!p) return;
        var price = priceOf(pid, state.currency);
        var opt = el('option', { value: pid,
          text: p.name + (price === null ? ' (not sold in ' + state.currency + ')' : ' · ' + money(price, state.currency)) });
        if (price === null) opt.disabled = true;
        select.appendChild(opt);
      });
      function update() {
        var p = state.products[select.value];
        var price = priceOf(select.value, state.currency);
        var n = Math.max(1, Math.min(MAX_QTY, parseInt(qty.value, 10) || 1));
        priceEl.textContent = price === null ? '' : money(price * n, state.currency);
        detail.textContent = p ? [p.medium, p.size].filter(Boolean).join(' · ') : '';
        add.disabled = price === null;
      }
      select.addEventListener('change', update);
      qty.addEventListener('input', update);
      form.addEventListener('submit', function (ev) {
        ev.preventDefault();
        if (!select.value) return;
        addToCart(photo.id, select.value, parseInt(qty.value, 10) || 1);
        add.textContent = 'Added ✓';
        setTimeout(function () { add.textContent = 'Add to cart'; }, 1200);
      });
      if (!select.options.length) {
        select.appendChild(el('option', { value: '', text: 'Not for sale' }));
        select.disabled = true;
      }
      update();
      grid.appendChild(card);
    });
  }

  /* ---------------------------------------------------------------- cart */

  function addToCart(photo, product, quantity) {
    var line = state.cart.find(function (l) { return l.photo === photo && l.product === product; });
    if (line) line.quantity = Math.min(MAX_QTY, line.quantity + quantity);
    else state.cart.push({ photo: photo, product: product, quantity: Math.min(MAX_QTY, quantity) });
    save(CART_KEY, state.cart);
    renderCart();
  }

  function setQuantity(i, q) {
    if (q < 1) state.cart.splice(i, 1);
    else state.cart[i].quantity = Math.min(MAX_QTY, q);
    save(CART_KEY, state.cart);
    renderCart();
  }

  // the quote's line for a cart line (lines are priced in cart order)
  function quotedLine(i, l) {
    var q = state.quote;
    var ql = q && q.lines && q.lines[i];
    return ql && ql.photo === l.photo && ql.product === l.product ? ql : null;
  }

  function renderCart() {
    var list = $('cart-lines');
    list.textContent = '';
    var complete = true;
    var count = 0;
    // lines whose photo or product left the catalogue are dropped
    if (state.catalogue) {
      state.cart = state.cart.filter(function (l) {
        return state.photos[l.photo] && state.products[l.product];
      });
    }
    state.cart.forEach(function (l, i) {
      var photo = state.photos[l.photo] || { title: l.photo };
      var product = state.products[l.product] || { name: l.product };
      var price = priceOf(l.product, state.currency);
      var ql = quotedLine(i, l);
      if (price === null) complete = false;
      count += l.quantity;
      var minus = el('button', { type: 'button', class: 'icon', 'aria-label': 'One fewer ' + photo.title, text: '−' });
      var plus = el('button', { type: 'button', class: 'icon', 'aria-label': 'One more ' + photo.title, text: '+' });
      var remove = el('button', { type: 'button', class: 'link', 'aria-label': 'Remove ' + photo.title, text: 'Remove' });
      minus.addEventListener('click', function () { setQuantity(i, l.quantity - 1); });
      plus.addEventListener('click', function () { setQuantity(i, l.quantity + 1); });
      remove.addEventListener('click', function () { setQuantity(i, 0); });
      list.appendChild(el('li', {}, [
        el('div', { class: 'what' }, [
          el('strong', { text: photo.title }),
          el('span', { class: 'muted small', text: product.name })
        ]),
        el('div', { class: 'how' }, [
          minus, el('span', { class: 'q', 'aria-label': 'quantity', text: String(l.quantity) }), plus,
          el('span', { class: 'amount', text: price === null ? 'n/a'
            : ql ? money(ql.amount, state.currency) : '…' }),
          remove
        ])
      ]));
    });
    $('cart-empty').hidden = state.cart.length > 0;
    $('cart-count').textContent = String(count);
    if (!complete) {
      cancelScheduled();
      quoteSeq++;
      state.quote = null;
      state.quoteError = 'Some items are not sold in ' + state.currency + '.';
    }
    renderQuote();
    if (complete) scheduleQuote();
  }

  /* ---------------------------------------------------------------- quote */

  function countryName(code) {
    try {
      if (window.Intl && Intl.DisplayNames) {
        return new Intl.DisplayNames(undefined, { type: 'region' }).of(code) || code;
      }
    } catch (e) { /* old browser */ }
    return code;
  }

  // the country list of a quote (the shop's cart and a gallery's); current
  // is the buyer's choice, kept in the list
  function renderCountries(q, current) {
    var sel = $('country');
    var list = (q && Array.isArray(q.countries) && q.countries.length ? q.countries : COUNTRIES)
      .map(function (c) { return typeof c === 'string' ? c : c && c.code; })
      .filter(function (c) { return typeof c === 'string' && /^[A-Z]{2}$/.test(c); });
    if (current && list.indexOf(current) < 0) list.unshift(current);
    var key = list.join(',');
    if (sel.dataset.list !== key) {
      sel.textContent = '';
      list.map(function (c) { return { code: c, name: countryName(c) }; })
        .sort(function (a, b) { return a.name.localeCompare(b.name); })
        .forEach(function (c) { sel.appendChild(el('option', { value: c.code, text: c.name })); });
      sel.dataset.list = key;
    }
    if (current) sel.value = current;
  }

  function show(id, on, text) {
    var e = $(id);
    e.hidden = !on;
    if (text !== undefined) e.textContent = on ? text : '';
  }

  // the shipping methods of a quote, as radio buttons; onPick(method)
  function renderMethods(q, onPick) {
    var ship = q && q.shipping;
    var opts = ship && Array.isArray(ship.options) ? ship.options : [];
    var box = $('shipping-options');
    box.textContent = '';
    $('shipping-methods').hidden = opts.length < 2;
    if (opts.length < 2) return;
    opts.forEach(function (o, i) {
      var id = 'ship-' + i;
      var input = el('input', { type: 'radio', name: 'shipping_method', id: id, value: String(o.method) });
      input.checked = o.method === ship.method;
      input.addEventListener('change', function () { onPick(o.method); });
      var label = el('label', { for: id }, [
        document.createTextNode((o.name || o.method) + ' · '
          + (o.amount ? money(o.amount, q.currency) : 'free'))
      ]);
      box.appendChild(el('div', { class: 'method' }, [input, label]));
    });
  }

  // a quote's discount, shipping, VAT and total rows (the shop's cart and a
  // gallery's)
  function renderTotals(q) {
    var cur = q.currency;
    var disc = q.discount_amount > 0;
    $('q-discount-label').hidden = !disc;
    $('q-discount-label').textContent = 'Discount'
      + (q.discount && q.discount.code ? ' (' + q.discount.code + ')' : '');
    show('q-discount', disc, '−' + money(q.discount_amount, cur));

    var ship = q.physical && q.shipping;
    $('q-shipping-label').hidden = !ship;
    $('q-shipping-label').textContent = ship && ship.name && ship.name !== 'Shipping'
      ? 'Shipping (' + ship.name + ')' : 'Shipping';
    show('q-shipping', !!ship, ship ? (q.shipping_amount ? money(q.shipping_amount, cur) : 'Free') : '');

    // VAT: inside the prices (shown, not added) or added to them
    var tax = q.tax_amount > 0;
    var taxName = q.tax_label || q.tax_name || 'VAT';
    $('q-tax-label').hidden = !tax || q.tax_inclusive;
    $('q-tax-label').textContent = taxName;
    show('q-tax', tax && !q.tax_inclusive, money(q.tax_amount, cur));
    show('tax-note', tax && q.tax_inclusive,
      'Includes ' + taxName + ' ' + money(q.tax_amount, cur));

    $('cart-total').textContent = money(q.total, cur);
  }

  function renderQuote() {
    var q = state.quote;
    var has = state.cart.length > 0;
    $('quote-box').hidden = !has;
    $('checkout-button').disabled = !has || !q || !!state.quoteError || busy();
    show('quote-error', has && !!state.quoteError, state.quoteError || '');
    if (!has || !q) {
      $('cart-total').textContent = has && busy() && !state.quoteError ? 'Pricing…' : '–';
      show('tax-note', false, '');
      ['q-discount', 'q-shipping', 'q-tax'].forEach(function (id) {
        show(id, false, ''); $(id + '-label').hidden = true;
      });
      $('q-subtotal').textContent = '–';
      return;
    }
    var cur = q.currency;
    renderCountries(q, state.country);
    renderMethods(q, function (m) { state.method = m; scheduleQuote(0); });
    $('country-hint').textContent = q.physical ? '(shipping to)' : '(for VAT)';
    $('q-subtotal').textContent = money(q.subtotal, cur);


    renderTotals(q);

    if (q.discount && q.discount.code) {
      show('discount-applied', true);
      $('discount-applied-text').textContent = 'Code ' + q.discount.code + ' applied.';
    } else {
      show('discount-applied', false);
    }
  }

  var quoteTimer = null, quoteSeq = 0;

  function busy() { return quoteTimer !== null || state.quoting > 0; }

  function cancelScheduled() {
    clearTimeout(quoteTimer);
    quoteTimer = null;
  }

  // a quote soon: changes close together make one request
  function scheduleQuote(delay) {
    cancelScheduled();
    if (!state.cart.length || !state.catalogue) {
      state.quote = null;
      state.quoteError = null;
      renderQuote();
      return;
    }
    quoteTimer = setTimeout(function () {
      quoteTimer = null;
      refreshQuote();
    }, delay === undefined ? 150 : delay);
    renderQuote();
  }

  function quoteBody(code) {
    var b = {
      items: state.cart.map(function (l) { return { photo: l.photo, product: l.product, quantity: l.quantity }; }),
      currency: state.currency
    };
    if (state.country) b.country = state.country;
    if (state.method) b.shipping_method = state.method;
    if (code) b.discount_code = code;
    return b;
  }

  function renderLineAmounts() {
    Array.prototype.forEach.call($('cart-lines').children, function (li, i) {
      var l = state.cart[i];
      var a = li.querySelector('.amount');
      if (!l || !a || priceOf(l.product, state.currency) === null) return;
      var ql = quotedLine(i, l);
      a.textContent = ql ? money(ql.amount, state.currency) : '–';
    });
  }

  // asks for the quote (with newCode: that code applied).  A refused code
  // is told beside the code field, in the server's words, and the cart is
  // priced without it.  Answers that arrive late are dropped.
  async function refreshQuote(newCode) {
    var seq = ++quoteSeq;
    var code = newCode !== undefined ? newCode : state.code;
    var refused = null;
    var q = null;
    state.quoting++;
    renderQuote();
    try {
      try {
        q = await api('POST', '/api/cart/quote', quoteBody(code));
      } catch (e) {
        if (!code || e.status === undefined || e.status >= 500) throw e;
        // was it the code?  The cart priced without it tells
        q = await api('POST', '/api/cart/quote', quoteBody(null));
        refused = e.message;
      }
      if (seq !== quoteSeq) return;
      if (refused !== null) {
        state.code = null;
        show('discount-error', true, refused);
      } else if (code) {
        state.code = code;
        show('discount-error', false, '');
      }
      // a method the shop does not offer for this country is dropped
      if (state.method && q.shipping && q.shipping.method !== state.method) state.method = null;
      if (!state.country && q.country) state.country = q.country;
      state.quote = q;
      state.quoteError = null;
    } catch (e) {
      if (seq !== quoteSeq) return;
      state.quote = null;
      state.quoteError = e.status === undefined
        ? 'The cart could not be priced: the shop is unreachable.' : e.message;
    } finally {
      state.quoting--;
      if (seq === quoteSeq) {
        renderLineAmounts();
        renderQuote();
        if (refused !== null && newCode !== undefined) $('discount-code').focus();
      }
    }
  }

  function applyCode(ev) {
    ev.preventDefault();
    var v = $('discount-code').value.trim();
    show('discount-error', false, '');
    if (!v) {
      show('discount-error', true, 'Enter a discount code first.');
      $('discount-code').focus();
      return;
    }
    cancelScheduled();
    refreshQuote(v);
  }

  function renderRecent() {
    var orders = load(ORDERS_KEY, []);
    var ul = $('recent-orders');
    ul.textContent = '';
    orders.slice(0, 5).forEach(function (o) {
      ul.appendChild(el('li', {}, [el('a', { href: '/order.html?token=' + encodeURIComponent(o.token), text: o.order })]));
    });
    $('recent').hidden = !orders.length;
  }

  /* ---------------------------------------------------------------- checkout */

  // one key per cart submission: a retry of the same submission (the
  // answer was lost, the server was reloading) gets the same order back
  function idempotencyKey() {
    if (window.crypto && crypto.randomUUID) return 'cart-' + crypto.randomUUID();
    var b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return 'cart-' + Array.prototype.map.call(b, function (x) {
      return ('0' + x.toString(16)).slice(-2);
    }).join('');
  }

  // the order in the recent orders (and, for a gallery's cart, which cart
  // the order page empties once the order is paid); returns its token
  function rememberOrder(res, cartKey) {
    var token = (res.status_url || '').split('/').pop();
    if (!token) return null;
    var orders = load(ORDERS_KEY, []).filter(function (o) { return o.token !== token; });
    orders.unshift({ order: res.order, token: token, at: Date.now() });
    save(ORDERS_KEY, orders.slice(0, 10));
    if (cartKey) save('darkroom.cart-of.' + token, cartKey);
    return token;
  }

  function pause(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }

  // network errors and 503 are retried with the same key; anything else
  // is the answer
  async function submitCart(body) {
    var headers = { 'Idempotency-Key': idempotencyKey() };
    for (var attempt = 1; ; attempt++) {
      try {
        return await api('POST', '/api/checkout', body, headers);
      } catch (e) {
        if (attempt >= 3 || (e.status !== undefined && e.status !== 503)) throw e;
        await pause(1000 * attempt);
      }
    }
  }

  async function checkout(ev) {
    ev.preventDefault();
    var errEl = $('checkout-error');
    var email = $('email');
    var button = $('checkout-button');
    errEl.hidden = true;
    if (!email.value || !email.checkValidity()) {
      errEl.textContent = 'Please enter a valid email address for your receipt.';
      errEl.hidden = false;
      email.focus();
      return;
    }
    save(EMAIL_KEY, email.value);
    button.disabled = true;
    button.textContent = 'Opening checkout…';
    try {
      var body = quoteBody(state.code);
      body.email = email.value;
      if (!body.country && state.quote) body.country = state.quote.country;
      var res = await submitCart(body);
      rememberOrder(res);
      // the cart stays until the order page sees the payment (a declined
      // or abandoned checkout comes back to a full cart)
      window.location.assign(res.checkout_url);
    } catch (e) {
      errEl.textContent = e.message;
      errEl.hidden = false;
      button.disabled = false;
      button.textContent = 'Checkout';
    }
  }

  /* ---------------------------------------------------------------- start */

  async function start() {
    state.cart = load(CART_KEY, []).filter(function (l) {
      return l && typeof l.photo === 'string' && typeof l.product === 'string' && l.quantity >= 1;
    });
    $('email').value = load(EMAIL_KEY, '') || '';
    $('checkout').addEventListener('submit', checkout);
    $('currency').addEventListener('change', function (ev) {
      state.currency = ev.target.value;
      save(CURRENCY_KEY, state.currency);
      renderPhotos();
      renderCart();
    });
    state.country = load(COUNTRY_KEY, null);
    if (typeof state.country !== 'string' || !/^[A-Z]{2}$/.test(state.country)) state.country = null;
    renderCountries(null, state.country);
    $('country').addEventListener('change', function (ev) {
      state.country = ev.target.value;
      state.method = null;
      save(COUNTRY_KEY, state.country);
      scheduleQuote(0);
    });
    $('discount').addEventListener('submit', applyCode);
    $('discount-remove').addEventListener('click', function () {
      state.code = null;
      $('discount-code').value = '';
      show('discount-error', false, '');
      scheduleQuote(0);
    });
    renderCart();
    renderRecent();

    fetch('/health').then(function (r) { return r.json(); }).then(function (h) {
      $('health').textContent = h.status === 'ok' ? 'Server ok' : 'Server degraded';
    }).catch(function () { $('health').textContent = 'Server unreachable'; });

    try {
      var cat = await api('GET', '/api/catalogue');
      state.catalogue = cat;
      cat.products.forEach(function (p) { state.products[p.id] = p; });
      cat.photos.forEach(function (p) { state.photos[p.id] = p; });
      var saved = load(CURRENCY_KEY, null);
      var list = cat.currencies || [cat.currency];
      state.currency = list.indexOf(saved) >= 0 ? saved : (cat.currency || list[0] || 'GBP');
      renderCurrencies();
      renderPhotos();
      renderCart();
      $('catalogue-status').hidden = true;
      if (!cat.photos.length) {
        $('catalogue-status').textContent = 'No prints for sale yet.';
        $('catalogue-status').hidden = false;
      }
    } catch (e) {
      $('catalogue-status').textContent = 'The catalogue could not be loaded: ' + e.message;
      $('catalogue-status').classList.add('error');
    }
  }

  // the helpers the client gallery page (www/gallery.html) shares
  window.darkroom = { money: money, el: el, api: api, load: load, save: save,
    idempotencyKey: idempotencyKey, pause: pause, rememberOrder: rememberOrder,
    countryName: countryName, COUNTRIES: COUNTRIES, EMAIL_KEY: EMAIL_KEY,
    show: show, renderCountries: renderCountries, renderMethods: renderMethods,
    renderTotals: renderTotals,
    COUNTRY_KEY: COUNTRY_KEY, MAX_QTY: MAX_QTY };

  // the shop's own page only
  document.addEventListener('DOMContentLoaded', function () {
    if ($('photos')) start();
  });
})();
