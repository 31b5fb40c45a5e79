/*
 * darkroom console: the catalogue, read only: products with their prices
 * and print sizes (GET /admin/api/products) and the price sheets galleries
 * sell from (GET /admin/api/price-sheets).
 */

(function () {
    'use strict';

    var h = DRP.h;

    function prices(p) {
        var k = Object.keys(p || {}).sort();

        if (!k.length) {
            return '—';
        }
        return k.map(function (c) {
            return DRP.money(p[c], c);
        }).join(', ');
    }

    function size(s) {
        return s ? s.width_mm + ' × ' + s.height_mm + ' mm' : '—';
    }

    function render(root) {
        DRP.loading(root);

        return Promise.all([DR.api('GET', DRP.SHOP + 'products'),
                            DR.api('GET', DRP.SHOP + 'price-sheets')]).then(
            function (r) {
                var products = r[0].products || [],
                    sheets = r[1].price_sheets || [];

                root.textContent = '';
                root.appendChild(h('section', { id: 'catalogue-products' }, [
                    h('h2', { text: 'Products' }),
                    DRP.table(['Product', 'Id', 'Kind', 'Medium / size',
                               'Print size', 'Prices', 'Active'],
                        products.map(function (p) {
                            return [p.name, p.id, p.kind,
                                    [p.medium, p.size].filter(Boolean)
                                        .join(', ') || '—',
                                    size(p.print_size), prices(p.prices),
                                    p.active ? 'yes' : 'no'];
                        }), 'No product.')]));

                root.appendChild(h('section', { id: 'catalogue-sheets' },
                    [h('h2', { text: 'Price sheets' })].concat(
                        sheets.length ? sheets.map(function (s) {
                            return h('article', { 'data-sheet': s.id }, [
                                h('h3', { text: s.name + ' (' + s.id + ')' }),
                                h('p', { 'class': 'hint', text: 'Galleries: '
                                    + (s.galleries.length
                                       ? s.galleries.join(', ') : 'none') }),
                                DRP.table(['Product', 'Prices'],
                                    s.items.map(function (i) {
                                        var own = Object.keys(i.prices)
                                            .length;
                                        return [i.product, own
                                            ? prices(i.prices)
                                            : 'catalogue prices'];
                                    }), 'No product.')]);
                        }) : [h('p', { 'class': 'empty',
                                       text: 'No price sheet.' })])));
            }, function (e) {
                DRP.failed(root, e);
            });
    }

    DR.page('catalogue', { title: 'Catalogue', nav: 'Catalogue',
                           render: render });
}());
