/* The script of the `pretrans diff --html` report (embedded by
 * diff_html_assets.S; the data format is described in diff_html.c).
 *
 * The function table is virtual: `view` holds the entry indices that pass
 * the filters, in the current sort order, and only the rows inside the
 * scrolled window (plus a margin) are in the DOM, between two spacer rows.
 * Sorting sorts an index array on typed-array columns; typing in the filter
 * box refilters after a short pause; one diff is drawn at a time, from the
 * hunks in the data, when a function is chosen (#dN in the address). */
'use strict';
(function () {
	var D = JSON.parse(document.getElementById('data').textContent);
	var N = D.k.length, ROW = 21, MARGIN = 12, DEBOUNCE = 120;
	var cls = Int8Array.from(D.c), file = Int32Array.from(D.f);
	var oldKey = new Map(D.ren.map(function (p) { return [p[0], p[1]]; }));
	var diffOf = new Map(D.d.map(function (d, j) { return [d[0], j]; }));
	var wrap = document.getElementById('tablewrap');
	var tbody = document.querySelector('#funcs tbody');
	var heads = document.querySelectorAll('#funcs th');
	var q = document.getElementById('q');
	var shown = document.getElementById('shown');
	var view = new Int32Array(0), order = null, sortCol = 0, sortAsc = true;
	var lowKeys = null, lowFiles = null, drawn = '', timer = 0;

	function esc(s) {
		return String(s).replace(/[&<>"]/g, function (c) {
			return c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : '&quot;';
		});
	}
	function name(i) {
		return oldKey.has(i) ? oldKey.get(i) + ' \u2192 ' + D.k[i] : D.k[i];
	}

	/* Addresses: offsets from a per-side base (or hex strings). */
	function addrCol(col, base) {
		if (col.some(function (v) { return typeof v === 'string'; })) {
			var v = new Float64Array(N), s = col.slice().sort();
			var rank = new Map(s.map(function (x, j) { return [x, j]; }));
			col.forEach(function (x, i) { v[i] = x === -1 ? -1 : rank.get(x); });
			return { v: v, txt: function (i) { return col[i] === -1 ? '' : '0x' + col[i].replace(/^0+(?=.)/, ''); } };
		}
		var b = BigInt('0x' + base), f = Float64Array.from(col);
		return { v: f, txt: function (i) { return f[i] < 0 ? '' : '0x' + (b + BigInt(f[i])).toString(16); } };
	}
	var oa = addrCol(D.oa, D.ob), na = addrCol(D.na, D.nb);
	var os = Float64Array.from(D.os), ns = Float64Array.from(D.ns);
	/* Sort keys by column; null: the data order (entries come sorted by key). */
	var keys = [null, cls, file, oa.v, os, na.v, ns];

	function sortOrder() {
		var idx = new Int32Array(N);
		for (var i = 0; i < N; i++) idx[i] = i;
		var v = keys[sortCol];
		if (v) idx.sort(function (a, b) { return v[a] - v[b] || a - b; });
		if (!sortAsc) idx.reverse();
		return idx;
	}

	function filter() {
		var on = [];
		document.querySelectorAll('#controls input[type=checkbox]').forEach(function (c) {
			on[+c.value] = c.checked;
		});
		var s = q.value.trim().toLowerCase();
		if (s) lower();
		var out = new Int32Array(N), n = 0;
		for (var j = 0; j < N; j++) {
			var i = order[j];
			if (on[cls[i]] && (!s || lowKeys[i].indexOf(s) >= 0 || lowFiles[file[i]].indexOf(s) >= 0))
				out[n++] = i;
		}
		view = out.subarray(0, n);
		shown.textContent = n + ' of ' + N + ' functions';
		wrap.scrollTop = 0; /* a new list starts at its top */
		drawn = '';
		draw();
	}

	/* Lower-case names for the text filter, made once (at idle time after
	 * the first draw, or at the first keystroke). */
	function lower() {
		if (lowKeys) return;
		lowKeys = D.k.map(function (k, i) { return name(i).toLowerCase(); });
		lowFiles = D.files.map(function (f) { return f.toLowerCase(); });
	}

	function row(i) {
		var c = D.cls[cls[i]], nm = esc(name(i));
		var cell = diffOf.has(i) ? '<a href="#d' + i + '">' + nm + '</a>' : nm;
		return '<tr data-key="' + esc(D.k[i]) + '" data-cls="' + c + '"' +
			(location.hash === '#d' + i ? ' class="sel"' : '') + '><td title="' + nm + '">' +
			cell + '</td><td class="c-' + c + '">' + c + '</td><td title="' + esc(D.files[file[i]]) +
			'">' + esc(D.files[file[i]]) + '</td><td class="addr">' + oa.txt(i) + '</td><td class="n">' +
			(os[i] < 0 ? '' : os[i]) + '</td><td class="addr">' + na.txt(i) + '</td><td class="n">' +
			(ns[i] < 0 ? '' : ns[i]) + '</td></tr>';
	}

	/* The rows of the scrolled window, between two spacers. */
	function draw() {
		var n = view.length, hv = Math.max(wrap.clientHeight, 520), rows = Math.ceil(hv / ROW) + 2 * MARGIN;
		var first = Math.max(0, Math.min(Math.floor(wrap.scrollTop / ROW) - MARGIN, n - rows));
		var last = Math.min(n, first + rows);
		var id = first + ':' + last + ':' + location.hash;
		if (id === drawn) return;
		drawn = id;
		var h = ['<tr class="pad"><td colspan="7" style="height:' + first * ROW + 'px"></td></tr>'];
		for (var j = first; j < last; j++) h.push(row(view[j]));
		h.push('<tr class="pad"><td colspan="7" style="height:' + (n - last) * ROW + 'px"></td></tr>');
		tbody.innerHTML = h.join('');
	}

	function sortBy(col) {
		if (col === sortCol) sortAsc = !sortAsc;
		else { sortCol = col; sortAsc = true; }
		heads.forEach(function (h, j) {
			h.classList.toggle('asc', j === col && sortAsc);
			h.classList.toggle('desc', j === col && !sortAsc);
		});
		order = sortOrder();
		filter();
	}

	/* ---- diffs ---- */

	/* Token-level highlight of a changed line against its counterpart:
	 * the tokens outside their longest common subsequence are marked. */
	function tokens(s) { return s.match(/[A-Za-z0-9_.$@]+|\s+|[^A-Za-z0-9_.$@\s]/g) || []; }
	function marked(a, b) {
		var x = tokens(a), y = tokens(b), n = x.length, m = y.length;
		if (n * m > 40000) return ['<span class="x">' + esc(a) + '</span>', '<span class="x">' + esc(b) + '</span>'];
		var L = new Uint16Array((n + 1) * (m + 1)), w = m + 1;
		for (var i = n - 1; i >= 0; i--)
			for (var j = m - 1; j >= 0; j--)
				L[i * w + j] = x[i] === y[j] ? L[(i + 1) * w + j + 1] + 1 : Math.max(L[(i + 1) * w + j], L[i * w + j + 1]);
		var ka = new Uint8Array(n), kb = new Uint8Array(m);
		for (i = 0, j = 0; i < n && j < m;) {
			if (x[i] === y[j]) { ka[i++] = 1; kb[j++] = 1; }
			else if (L[(i + 1) * w + j] >= L[i * w + j + 1]) i++;
			else j++;
		}
		function out(t, keep) {
			var h = '', run = '';
			for (var k = 0; k < t.length; k++) {
				if (keep[k]) { if (run) h += '<span class="x">' + esc(run) + '</span>'; run = ''; h += esc(t[k]); }
				else run += t[k];
			}
			return run ? h + '<span class="x">' + esc(run) + '</span>' : h;
		}
		return [out(x, ka), out(y, kb)];
	}

	function sbsRow(c, ai, a, bi, b) {
		return '<tr class="' + c + '"><td class="ln">' + (a === null ? '' : ai) + '</td><td class="o">' +
			(a === null ? '' : a) + '</td><td class="ln">' + (b === null ? '' : bi) + '</td><td class="nw">' +
			(b === null ? '' : b) + '</td></tr>';
	}
	function gap(text) { return '<tr class="gap"><td colspan="4">' + text + '</td></tr>'; }

	/* A diff's lines are numbers into D.L (diff_html.c). */
	function sideBySide(d) {
		var L = D.L, h = ['<table class="sbs">'], ai = 1, bi = 1;
		if (d.big) {
			h.push(gap('more than 500 edits: both listings in full'));
			for (var k = 0; k < Math.max(d.a.length, d.b.length); k++) {
				var a = k < d.a.length ? esc(L[d.a[k]]) : null, b = k < d.b.length ? esc(L[d.b[k]]) : null;
				h.push(sbsRow('chg', k + 1, a, k + 1, b));
			}
			if (d.cut) h.push(gap('truncated: ' + d.cut + ' more lines'));
		} else {
			d.h.forEach(function (s) {
				if (typeof s === 'number' && s < 0) {
					h.push(gap('\u22ee ' + -s + ' equal'));
					ai -= s; bi -= s;
				} else if (typeof s === 'number') {
					h.push(sbsRow('eq', ai++, esc(L[s]), bi++, esc(L[s])));
				} else {
					var del = s[0], ins = s[1];
					for (var k = 0; k < Math.max(del.length, ins.length); k++) {
						var x = k < del.length ? L[del[k]] : null, y = k < ins.length ? L[ins[k]] : null;
						if (x !== null && y !== null) {
							var m = marked(x, y);
							h.push(sbsRow('chg', ai + k, m[0], bi + k, m[1]));
						} else {
							h.push(sbsRow(x !== null ? 'del' : 'ins', ai + k, x === null ? null : esc(x),
								bi + k, y === null ? null : esc(y)));
						}
					}
					ai += del.length; bi += ins.length;
				}
			});
			if (!d.h.length) h.push(gap('no difference in the normalised listings'));
		}
		h.push('</table>');
		return h.join('');
	}

	function showDiff() {
		var box = document.getElementById('diffview');
		var m = /^#d(\d+)$/.exec(location.hash), i = m ? +m[1] : -1;
		drawn = '';
		draw();
		if (!diffOf.has(i)) { box.innerHTML = ''; return; }
		var d = D.d[diffOf.get(i)], c = D.cls[cls[i]];
		var h = ['<div class="head"><span class="c-' + c + '">' + esc(name(i)) + '</span> (' + c + ', ' +
			esc(D.files[file[i]]) + ')<button id="prev">previous</button><button id="next">next</button></div>',
			sideBySide(d[1])];
		if (d[2]) h.push('<div class="meta">translation</div>', sideBySide(d[2]));
		else if (cls[i] === 2 && D.nxlat >= D.max_xlat && D.max_xlat)
			h.push('<div class="meta">translation diffs only for the first ' + D.max_xlat + ' changed functions</div>');
		box.innerHTML = h.join('');
		document.getElementById('prev').onclick = function () { step(-1); };
		document.getElementById('next').onclick = function () { step(1); };
	}

	/* The previous/next function with a diff in the table's current order. */
	function step(dir) {
		var m = /^#d(\d+)$/.exec(location.hash), cur = m ? +m[1] : -1, at = view.indexOf(cur);
		for (var j = at + dir; j >= 0 && j < view.length; j += dir)
			if (diffOf.has(view[j])) {
				location.hash = '#d' + view[j];
				var y = j * ROW;
				if (y < wrap.scrollTop || y > wrap.scrollTop + wrap.clientHeight - 3 * ROW)
					wrap.scrollTop = Math.max(0, y - 5 * ROW);
				return;
			}
	}

	/* ---- wiring ---- */

	heads.forEach(function (h, j) { h.addEventListener('click', function () { sortBy(j); }); });
	document.querySelectorAll('table.groups th').forEach(function (h) {
		h.addEventListener('click', function () { sortGroups(h); });
	});
	document.querySelectorAll('#controls input[type=checkbox]').forEach(function (c) {
		c.addEventListener('change', filter);
	});
	q.addEventListener('input', function () {
		clearTimeout(timer);
		timer = setTimeout(filter, DEBOUNCE);
	});
	wrap.addEventListener('scroll', function () { requestAnimationFrame(draw); });
	window.addEventListener('hashchange', showDiff);
	document.addEventListener('keydown', function (e) {
		if (e.target.tagName === 'INPUT' || e.ctrlKey || e.metaKey || e.altKey) return;
		if (e.key === 'n') step(1);
		else if (e.key === 'p') step(-1);
	});

	/* The small server-drawn tables sort their own rows. */
	function sortGroups(th) {
		var t = th.closest('table'), col = Array.prototype.indexOf.call(th.parentNode.children, th);
		var rows = Array.prototype.slice.call(t.tBodies[0].rows), asc = th.dataset.asc !== '1';
		var num = th.classList.contains('n');
		th.dataset.asc = asc ? '1' : '0';
		rows.sort(function (x, y) {
			var a = x.cells[col].textContent, b = y.cells[col].textContent;
			if (num) { a = +a; b = +b; }
			return (a < b ? -1 : a > b ? 1 : 0) * (asc ? 1 : -1);
		});
		rows.forEach(function (r) { t.tBodies[0].appendChild(r); });
	}

	order = sortOrder();
	heads[0].classList.add('asc');
	filter();
	showDiff();
	var m = /^#d(\d+)$/.exec(location.hash);
	if (m) { var at = view.indexOf(+m[1]); if (at >= 0) wrap.scrollTop = Math.max(0, (at - 5) * ROW); }
	document.documentElement.dataset.ready = '1';
	(window.requestIdleCallback || setTimeout)(lower);
})();
