// igan viewer: Leaflet on an endless plane (CRS.Simple). Zoom 0 is the native resolution: one
// map unit = one canvas pixel, canvas y grows downwards (lat = -y). Negative zooms are the
// server's box-filtered levels; positive zooms magnify native tiles.
// Style fusion: with "fuse styles" on, each click on the map places a centre whose style is the
// seed in the seed box (up to info.fusion.max_centres); tiles then carry ?fuse=S:X:Y,...&band=B.
// State lives in the URL hash (#model/seed/zoom/x/y, then /S:X:Y,S:X:Y@BAND while fusion centres
// are placed, or /cW in 360-degree mode) so views can be shared.
// Tiles come from the layer's TileJSON (/tiles/{model}/{seed}/tilejson.json), @2x on high-DPI
// screens. 360-degree mode: the canvas is cyclic with period W pixels (?cyclic=W), so tiles repeat
// every W pixels; the view wraps back into [0, W) after each move (no fusion in this mode).
// ?pmtiles=URL shows an exported PMTiles archive instead (showArchive below).
// Test hook: ?pan=DX,DY pans by that many screen pixels after the first tiles arrive;
// #status carries data-state (loading, ready, panned, error), data-tiles and data-errors.
(function () {
  'use strict';
  const status = document.getElementById('status');
  const counts = { tiles: 0, errors: 0, previews: 0, refined: 0 };
  function setStatus(state, text) {
    status.dataset.state = state;
    status.dataset.tiles = counts.tiles;
    status.dataset.errors = counts.errors;
    status.dataset.previews = counts.previews;
    status.dataset.refined = counts.refined;
    status.textContent = text;
    status.className = state === 'error' ? 'err' : '';
  }
  if (typeof L === 'undefined') {
    setStatus('error', 'Leaflet is missing: build igan with libjs-leaflet installed');
    return;
  }
  const archive = new URLSearchParams(location.search).get('pmtiles');
  if (archive) {
    // ?pmtiles=URL: an archive of `igan export --format pmtiles` read by HTTP range requests
    // through the pmtiles package, which a static copy of this page finds at /pmtiles/pmtiles.js
    // (scripts/fetch-pmtiles.sh). Its native zoom is map zoom 0; #z/x/y as below.
    const script = document.createElement('script');
    script.src = '/pmtiles/pmtiles.js';
    script.onload = () => showArchive(archive).catch(e => setStatus('error', String(e)));
    script.onerror = () => setStatus('error', 'pmtiles.js is missing (scripts/fetch-pmtiles.sh)');
    document.head.appendChild(script);
    return;
  }
  fetch('/api/info').then(r => r.json()).then(start).catch(e => setStatus('error', String(e)));

  async function showArchive(url) {
    for (const el of document.querySelectorAll('#bar > :not(#status)')) el.style.display = 'none';
    const source = new pmtiles.PMTiles(url);
    const header = await source.getHeader();
    const meta = await source.getMetadata();
    const top = header.maxZoom;
    const type = header.tileType === 4 ? 'image/webp' : 'image/png';
    const Archive = L.GridLayer.extend({
      createTile(c, done) {
        const img = document.createElement('img');
        const outside = c.x < 0 || c.y < 0 || Math.max(c.x, c.y) >= Math.pow(2, c.z + top);
        (outside ? Promise.resolve() : source.getZxy(c.z + top, c.x, c.y)).then(t => {
          if (!t) return done(null, img);  // outside the exported area
          img.onload = () => { URL.revokeObjectURL(img.src); done(null, img); };
          img.onerror = () => done(new Error('undecodable tile'), img);
          img.src = URL.createObjectURL(new Blob([t.data], { type: type }));
        }).catch(e => done(e, img));
        return img;
      },
    });
    const zooms = { minZoom: header.minZoom - top, maxZoom: 2 };
    const map = L.map('map', Object.assign({ crs: L.CRS.Simple, zoomSnap: 1,
        attributionControl: false, fadeAnimation: false }, zooms));
    const area = meta.igan || {};
    const layer = new Archive(Object.assign({ tileSize: area.tile_size || 256, maxNativeZoom: 0,
        noWrap: true, bounds: area.width && L.latLngBounds(map.unproject([0, area.height], 0),
                                                           map.unproject([area.width, 0], 0)) },
        zooms));
    layer.on('tileload', e => { if (e.tile.src) counts.tiles++; });
    layer.on('tileerror', () => { counts.errors++; });
    layer.on('load', () => setStatus('ready', counts.tiles + ' tiles of ' + (meta.name || url) +
        (counts.errors ? ', ' + counts.errors + ' errors' : '')));
    layer.addTo(map);
    const v = location.hash.replace(/^#/, '').split('/').map(Number);
    map.setView(map.unproject([v[1] || 0, v[2] || 0], 0), v.length === 3 ? v[0] || 0 : 0);
    map.on('moveend', () => {
      const c = map.project(map.getCenter(), 0);
      history.replaceState(null, '', '#' + [map.getZoom(), Math.round(c.x), Math.round(c.y)]
          .join('/'));
    });
  }

  function start(info) {
    const modelSel = document.getElementById('model');
    const seedBox = document.getElementById('seed');
    const download = document.getElementById('download');
    for (const m of info.models) {
      const o = document.createElement('option');
      o.value = m.name;
      o.textContent = m.name + ' (' + m.config_name + ')';
      modelSel.appendChild(o);
    }
    const hash = location.hash.replace(/^#/, '').split('/');
    const view = { model: info.models[0].name, seed: 1, z: 0, x: 0, y: 0, fusion: '', cyclic: 0 };
    if (hash.length >= 5 && hash.length <= 6 && info.models.some(m => m.name === hash[0])) {
      view.model = hash[0];
      view.seed = /^\d+$/.test(hash[1]) ? hash[1] : '1';
      view.z = Number(hash[2]) || 0;
      view.x = Number(hash[3]) || 0;
      view.y = Number(hash[4]) || 0;
      const extra = hash[5] || '';
      if (/^c\d{1,12}$/.test(extra)) view.cyclic = Number(extra.slice(1));
      else try { view.fusion = decodeURIComponent(extra); } catch (e) { view.fusion = ''; }
    }
    modelSel.value = view.model;
    seedBox.value = view.seed;

    const map = L.map('map', {
      crs: L.CRS.Simple, minZoom: info.min_zoom, maxZoom: 2, zoomSnap: 1,
      attributionControl: false, fadeAnimation: false,
    });
    const fuseBox = document.getElementById('fuse');
    const bandBox = document.getElementById('band');
    const wrapBox = document.getElementById('wrap');
    const periodBox = document.getElementById('period');
    if (view.cyclic) { wrapBox.checked = true; periodBox.value = view.cyclic; }
    // The period in pixels while 360-degree mode is on, else 0.
    function period() {
      if (!wrapBox.checked) return 0;
      const model = info.models.find(m => m.name === modelSel.value);
      const cell = (model && model.upscale) || 8;  // the period is whole latent cells
      const w = Math.round(Number(periodBox.value) / cell) * cell;
      return Math.min(1 << 30, Math.max(2 * cell, w || 2048));
    }
    const centres = [];  // {seed, x, y, marker}
    const markers = L.layerGroup();
    const limit = (info.fusion && info.fusion.max_centres) || 16;
    function addCentre(c) {
      if (centres.length >= limit || centres.some(o => o.x === c.x && o.y === c.y)) return false;
      c.marker = L.circleMarker(map.unproject([c.x, c.y], 0), { radius: 6, color: '#fff', weight: 2 })
          .bindTooltip('seed ' + c.seed).addTo(markers);
      centres.push(c);
      return true;
    }
    function bandValue() {
      return Math.min(1000000, Math.max(1, Math.round(Number(bandBox.value) || 128)));
    }
    const shared = view.fusion
        .match(/^(\d{1,19}:-?\d{1,12}:-?\d{1,12}(?:,\d{1,19}:-?\d{1,12}:-?\d{1,12})*)(?:@(\d{1,7}))?$/);
    if (shared) {
      for (const spec of shared[1].split(',')) {
        const [seed, x, y] = spec.split(':');
        addCentre({ seed: seed, x: Number(x), y: Number(y) });
      }
      if (shared[2]) bandBox.value = shared[2];
    }
    function fuseHash() {
      if (period()) return ['c' + period()];
      if (!centres.length) return [];
      return [centres.map(c => c.seed + ':' + c.x + ':' + c.y).join(',') + '@' + bandValue()];
    }
    function fuseQuery() {
      if (!centres.length) return '';
      return 'fuse=' + centres.map(c => c.seed + ':' + c.x + ':' + c.y).join(',') + '&band=' +
          bandValue();
    }
    function query() {
      if (period()) return '?cyclic=' + period();
      return centres.length ? '?' + fuseQuery() : '';
    }
    const tilejsonUrl = () => '/tiles/' + encodeURIComponent(modelSel.value) + '/' +
        seedText() + '/tilejson.json' + query();
    // Added to the map once its first TileJSON arrives; its zoom 0 is the TileJSON's native zoom.
    // Tiles are fetched (not <img src>) to read X-Igan-Preview: a coarse student's tile sent
    // while the server makes the exact one, asked for again until the exact one arrives.
    const RefiningTiles = L.TileLayer.extend({
      createTile(coords, done) {
        const img = document.createElement('img');
        img.alt = '';
        const url = this.getTileUrl(coords);
        img.dataset.url = url;  // what the page shows of the tile's address
        let tries = 0;
        const load = () => fetch(url, { cache: tries ? 'no-cache' : 'default' })
            .then(r => r.ok ? r.blob().then(b => [b, r.headers.get('X-Igan-Preview')])
                            : Promise.reject(new Error('tile ' + r.status)))
            .then(([blob, preview]) => {
              const old = img.src, first = tries++ === 0;
              img.onload = () => {
                if (old) URL.revokeObjectURL(old);
                if (first) done(null, img);
                if (!preview && !first) { counts.refined++; setStatus(status.dataset.state, summary()); }
              };
              img.dataset.preview = preview ? '1' : '';
              if (preview && first) counts.previews++;
              img.src = URL.createObjectURL(blob);
              if (preview && tries < 60) {
                setTimeout(() => { if (img.isConnected) load(); }, 500 * Math.min(tries, 8));
              }
            })
            .catch(e => { if (tries === 0) done(e, img); });
        load();
        return img;
      },
    });
    const layer = new RefiningTiles('', {
      tileSize: info.tile_size, minZoom: info.min_zoom, maxNativeZoom: 0, maxZoom: 2,
      noWrap: true, keepBuffer: 1, updateWhenZooming: false,
    });
    layer.on('tileload', () => { counts.tiles++; setStatus(status.dataset.state, summary()); });
    layer.on('tileerror', () => { counts.errors++; setStatus(status.dataset.state, summary()); });
    let asked = 0;
    function loadTiles() {
      const ticket = ++asked;
      fetch(tilejsonUrl()).then(r => r.ok ? r.json() : Promise.reject(new Error('TileJSON ' + r.status)))
          .then(tj => {
            if (ticket !== asked) return;  // a newer choice is on its way
            const hiDpi = (window.devicePixelRatio || 1) >= 1.5 && tj.igan && tj.igan.tiles_2x;
            layer.options.zoomOffset = (tj.igan && tj.igan.native_zoom) || tj.maxzoom;
            layer.setUrl(hiDpi ? tj.igan.tiles_2x[0] : tj.tiles[0]);
            if (!map.hasLayer(layer)) layer.addTo(map);
          })
          .catch(e => setStatus('error', String(e)));
    }
    markers.addTo(map);
    map.setView(map.unproject([view.x, view.y], 0), view.z);
    loadTiles();

    function seedText() {
      const s = String(seedBox.value).trim();
      return /^\d{1,19}$/.test(s) ? s : '0';
    }
    function summary() {
      return counts.tiles + ' tiles' + (counts.errors ? ', ' + counts.errors + ' errors' : '') +
          (counts.previews ? ', ' + counts.refined + ' of ' + counts.previews + ' previews refined' : '');
    }
    function update() {
      const c = map.project(map.getCenter(), 0);
      const z = map.getZoom();
      history.replaceState(null, '', '#' + [modelSel.value, seedText(), z,
          Math.round(c.x), Math.round(c.y)].concat(fuseHash()).join('/'));
      const b = map.getPixelBounds();
      const scale = Math.pow(2, -z);
      const x = Math.floor(b.min.x * scale), y = Math.floor(b.min.y * scale);
      const w = Math.ceil(b.max.x * scale) - x, h = Math.ceil(b.max.y * scale) - y;
      const fits = w <= info.max_render_side && h <= info.max_render_side &&
          w * h <= info.max_render_pixels;
      download.href = fits ? '/render?model=' + encodeURIComponent(modelSel.value) + '&seed=' +
          seedText() + '&x=' + x + '&y=' + y + '&w=' + w + '&h=' + h +
          query().replace('?', '&') : '#';
      download.title = fits ? w + ' x ' + h + ' pixels at native resolution'
                            : 'view too large for /render: zoom in';
      download.style.opacity = fits ? 1 : 0.4;
    }
    function restyle() { loadTiles(); update(); }
    // In 360-degree mode a view that left [0, W) jumps back by whole periods: the same tiles.
    function wrapView() {
      const w = period();
      const c = map.project(map.getCenter(), 0);
      if (!w || (c.x >= 0 && c.x < w)) return false;
      const x = ((c.x % w) + w) % w;
      map.setView(map.unproject([x, c.y], 0), map.getZoom(), { animate: false });
      return true;
    }
    function setWrap() {
      fuseBox.disabled = wrapBox.checked;  // the engine refuses fusion on a cyclic canvas
      if (wrapBox.checked) { fuseBox.checked = false; centres.length = 0; markers.clearLayers(); }
      restyle();
    }
    wrapBox.addEventListener('change', setWrap);
    periodBox.addEventListener('change', () => { if (wrapBox.checked) restyle(); });
    fuseBox.disabled = wrapBox.checked;
    modelSel.addEventListener('change', restyle);
    seedBox.addEventListener('change', restyle);
    document.getElementById('random').addEventListener('click', () => {
      seedBox.value = Math.floor(Math.random() * 1e9);
      restyle();
    });
    map.on('moveend zoomend', () => { if (!wrapView()) update(); });
    map.on('click', e => {
      if (!fuseBox.checked) return;
      const p = map.project(e.latlng, 0);
      if (addCentre({ seed: seedText(), x: Math.round(p.x), y: Math.round(p.y) })) restyle();
    });
    document.getElementById('clear').addEventListener('click', () => {
      centres.length = 0;
      markers.clearLayers();
      restyle();
    });
    bandBox.addEventListener('change', () => { if (centres.length) restyle(); });
    update();

    const pan = new URLSearchParams(location.search).get('pan');
    let panned = false;
    setStatus('loading', summary());
    layer.on('load', () => {  // every visible tile has arrived
      if (pan && !panned) {
        panned = true;
        const [dx, dy] = pan.split(',').map(Number);
        setStatus('ready', summary());
        map.panBy([dx || 0, dy || 0], { animate: false });
        if (!layer.isLoading()) setStatus('panned', summary());
        return;
      }
      setStatus(panned ? 'panned' : 'ready', summary());
    });
  }
})();
