// The perdure console: a client of the admin API it is served by (gateway/src/admin/ui.rs).
//
// It reads only what the CLIs read: GET /deployments, /services, /services/{name}/handlers,
// and SQL over the system tables with POST /query; it acts with the same routes (DELETE
// /deployments/{id}, PATCH /services/{name}, PATCH /invocations/{id}/{action}).
//
// Layout of this file: the DOM helper and formatting, the API client (with the bearer
// token), the confirmation dialog and toasts, one function per view (each builds its fixed
// parts once and returns a `refresh` that redraws its data), and the router with the
// auto-refresh loop at the end.

const TOKEN_KEY = 'perdure.admin-token';
const REFRESH_MS = 3000;
const PAGE_SIZE = 25;

// ---------------------------------------------------------------------------------------
// DOM and formatting

/** Builds an element: `attrs` keys are attributes, `testid` is `data-testid`, `on*` are
 *  listeners, `false`/`null` values are left out; children are nodes or text. */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (key === 'testid') el.dataset.testid = value;
    else if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (key === 'class') el.className = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

const enc = encodeURIComponent;

/** A SQL string literal. */
const lit = (s) => `'${String(s).replaceAll("'", "''")}'`;

function parseTime(s) {
  if (!s) return null;
  const t = Date.parse(String(s).replace(/(\.\d{3})\d+/, '$1'));
  return Number.isNaN(t) ? null : t;
}

function span(ms) {
  const s = Math.round(Math.abs(ms) / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

/** "5m 3s ago" / "in 12s", with the exact time as its tooltip. */
function when(s) {
  const t = parseTime(s);
  if (t === null) return h('span', { class: 'muted' }, '—');
  const d = t - Date.now();
  const text = Math.abs(d) < 1000 ? 'now' : d > 0 ? `in ${span(d)}` : `${span(d)} ago`;
  return h('time', { datetime: s, title: new Date(t).toISOString() }, text);
}

function badge(text, kind = text, testid = null) {
  return h('span', { class: `badge b-${String(kind).replace(/[^a-z-]/gi, '')}`, testid }, text);
}

function empty(text) {
  return h('p', { class: 'empty' }, text);
}

function link(href, text, attrs = {}) {
  return h('a', { href, 'data-nav': true, ...attrs }, text);
}

const invocationHref = (id) => `/ui/invocations/${enc(id)}`;

/** Bytes (an array of numbers, as sys_journal's entry_json has them) as text to show. */
function preview(bytes) {
  if (!Array.isArray(bytes)) return String(bytes);
  if (bytes.length === 0) return '(empty)';
  const text = new TextDecoder('utf-8', { fatal: false }).decode(new Uint8Array(bytes));
  if (/[\u0000-\u0008\u000e-\u001f\ufffd]/.test(text)) return `<${bytes.length} bytes>`;
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

// ---------------------------------------------------------------------------------------
// The admin API

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (t) => sessionStorage.setItem(TOKEN_KEY, t),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  const t = token.get();
  if (t) headers.Authorization = `Bearer ${t}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new ApiError(0, `cannot reach the admin API (${e.message})`);
  }
  const text = await response.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  const message = (json && json.message) || text || response.statusText;
  if (response.status === 401) {
    askForToken(t ? `The token was refused: ${message}` : message);
    throw new ApiError(401, message);
  }
  if (!response.ok) throw new ApiError(response.status, message);
  return json;
}

/** Rows of a SQL query over the system tables. */
async function sql(query) {
  const answer = await api('POST', '/query', { query });
  return (answer && answer.rows) || [];
}

// ---------------------------------------------------------------------------------------
// Token, dialog, toasts

const $ = (id) => document.getElementById(id);

function askForToken(message) {
  $('auth').hidden = false;
  $('auth-message').textContent = message;
  $('view').classList.add('locked');
  $('auth-token').focus();
}

function showSignOut() {
  $('sign-out').hidden = !token.get();
}

/** A modal confirmation; resolves to true on OK. With `typed`, OK needs that exact text. */
function confirmDialog({ title, body, ok = 'OK', danger = false, typed = null }) {
  const dialog = $('confirm');
  $('confirm-title').textContent = title;
  $('confirm-body').replaceChildren(...[body].flat().map((p) => (p instanceof Node ? p : h('p', {}, p))));
  const button = $('confirm-ok');
  button.textContent = ok;
  button.className = danger ? 'danger' : 'primary';
  const typedLabel = $('confirm-typed');
  const input = $('confirm-input');
  typedLabel.hidden = !typed;
  input.value = '';
  button.disabled = !!typed;
  input.oninput = () => {
    button.disabled = input.value.trim() !== typed;
  };
  if (typed) $('confirm-typed-label').textContent = `Type ${typed} to confirm:`;
  dialog.returnValue = '';
  dialog.showModal();
  (typed ? input : button).focus();
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
  });
}

function toast(text, kind = 'ok') {
  const el = h('div', { class: `toast t-${kind}`, testid: 'toast', role: kind === 'error' ? 'alert' : 'status' }, text);
  $('toasts').append(el);
  setTimeout(() => el.remove(), kind === 'error' ? 9000 : 4500);
}

/** Runs an action of the API; a toast says how it went, then the view refreshes. */
async function act(what, call) {
  try {
    await call();
    toast(what);
  } catch (e) {
    if (e.status !== 401) toast(`${what} failed: ${e.message}`, 'error');
  }
  refresh();
}

// ---------------------------------------------------------------------------------------
// Deployments

const PINNED_KINDS = ['running', 'suspended', 'backing_off', 'paused', 'scheduled', 'inboxed'];

const DRAIN_HINT = {
  active: 'New invocations of a service go here.',
  draining: 'No new invocations come here; some are still pinned to it.',
  drained: 'Nothing goes here and nothing is pinned to it: it can be removed.',
  inactive: 'Registered without promotion and never routed to: it can be removed.',
};

function deploymentsView(root) {
  const list = h('div', { class: 'cards', testid: 'deployments' });
  root.append(
    h('div', { class: 'view-head' }, h('h1', {}, 'Deployments'),
      h('p', { class: 'hint' }, 'Each deployment serves a revision of its services. Invocations stay pinned to the deployment they started on, so an old one drains before it can go.')),
    list,
  );
  return {
    async refresh() {
      const { deployments } = await api('GET', '/deployments');
      // Lambda aliases: what is pinned to each function version is in the details.
      const details = await Promise.all(
        deployments.map((d) => (d.arn ? api('GET', `/deployments/${enc(d.id)}`).catch(() => null) : null)),
      );
      const cards = deployments
        .map((d, i) => ({ d, detail: details[i] }))
        .sort((a, b) => (parseTime(b.d.created_at) ?? 0) - (parseTime(a.d.created_at) ?? 0))
        .map(({ d, detail }) => deploymentCard(d, detail));
      list.replaceChildren(...(cards.length ? cards : [empty('No deployments yet. Register one with `perdure dp add <uri>` or `restate deployments register <uri>`.')]));
    },
  };
}

function deploymentCard(d, detail) {
  const pinned = d.pinned_invocations || { total: 0 };
  const removable = d.drain_status === 'drained' || d.drain_status === 'inactive';
  const latest = new Set(d.latest_for || []);
  const address = d.uri || d.arn || '';
  const facts = [d.protocol_type, d.http_version, d.sdk_version].filter(Boolean).join(' · ');
  const breakdown = PINNED_KINDS.filter((k) => pinned[k] > 0).map((k) => h('span', { class: 'chip' }, `${k.replace('_', '-')} ${pinned[k]}`));
  const versions = (detail && detail.lambda_versions) || d.lambda_versions || [];
  return h('article', { class: `card s-${d.drain_status}`, testid: 'deployment-row', 'data-deployment-id': d.id, 'data-status': d.drain_status },
    h('header', {},
      h('div', { class: 'title' },
        h('code', { class: 'id', testid: 'deployment-id' }, d.id),
        h('span', { title: DRAIN_HINT[d.drain_status] || '' }, badge(d.drain_status, d.drain_status, 'deployment-status')),
        d.paused ? badge('paused', 'paused', 'deployment-paused') : null,
        d.held_at_version ? badge(`held at version ${d.held_at_version}`, 'paused') : null),
      h('div', { class: 'actions' },
        h('button', {
          type: 'button', testid: 'deployment-remove', disabled: !removable,
          title: removable ? 'Remove this deployment' : `It is ${d.drain_status}: remove it once it has drained`,
          onclick: () => removeDeployment(d, false),
        }, 'Remove'),
        removable ? null : h('button', { type: 'button', class: 'link danger-text', testid: 'deployment-force-remove', onclick: () => removeDeployment(d, true) }, 'Force remove…'))),
    h('div', { class: 'address' }, h('span', { class: 'mono' }, address), facts ? h('span', { class: 'muted' }, ` · ${facts}`) : null,
      h('span', { class: 'muted' }, ' · created '), when(d.created_at)),
    h('div', { class: 'split' },
      h('div', {},
        h('h4', {}, 'Services'),
        h('ul', { class: 'services', testid: 'deployment-services' },
          (d.services || []).map((s) => h('li', {},
            link(`/ui/services#${enc(s.name)}`, s.name), ' ', h('span', { class: 'rev' }, `revision ${s.revision}`),
            latest.has(s.name) ? badge('latest', 'latest') : null)))),
      h('div', {},
        h('h4', {}, 'Pinned invocations'),
        h('p', { class: 'pinned' },
          pinned.total > 0
            ? link(`/ui/invocations?deployment=${enc(d.id)}&status=active`, `${pinned.total} not completed`, { testid: 'deployment-pinned', 'data-count': pinned.total })
            : h('span', { class: 'muted', testid: 'deployment-pinned', 'data-count': 0 }, 'none'),
          ' ', breakdown))),
    versions.length ? lambdaVersions(versions) : null);
}

function lambdaVersions(versions) {
  return h('div', { class: 'lambda' },
    h('h4', {}, 'Lambda versions'),
    h('table', { testid: 'lambda-versions' },
      h('thead', {}, h('tr', {}, ['Version', 'Check', 'Pinned', 'First seen', 'Changes'].map((c) => h('th', {}, c)))),
      h('tbody', {}, versions.map((v) => h('tr', {},
        h('td', { class: 'mono' }, v.version),
        h('td', {}, v.compatible ? badge('compatible', 'active') : badge('incompatible', 'failed')),
        h('td', {}, v.pinned_invocations ?? '—'),
        h('td', {}, when(v.first_seen_at)),
        h('td', { class: 'small' }, (v.changes || []).join('; ') || '—'))))));
}

async function removeDeployment(d, force) {
  const path = `/deployments/${enc(d.id)}${force ? '?force=true' : ''}`;
  if (!force) {
    const ok = await confirmDialog({
      title: `Remove deployment ${d.id}?`,
      body: [`${d.uri || d.arn} is ${d.drain_status}: nothing routes to it and nothing is pinned to it.`, 'Its services keep their latest revisions elsewhere.'],
      ok: 'Remove', danger: true,
    });
    if (!ok) return;
  } else {
    const pinned = d.pinned_invocations ? d.pinned_invocations.total : 0;
    const first = await confirmDialog({
      title: `Force-remove deployment ${d.id}?`,
      body: [
        `It is ${d.drain_status}.`,
        pinned ? `${pinned} invocations pinned to it will end at once with an error naming it.` : 'No invocation is pinned to it.',
        (d.latest_for || []).length ? `These services lose their latest revision: ${d.latest_for.join(', ')}.` : null,
      ].filter(Boolean),
      ok: 'Continue…', danger: true,
    });
    if (!first) return;
    const second = await confirmDialog({
      title: 'Confirm the forced removal',
      body: ['This cannot be undone.'],
      ok: 'Force remove', danger: true, typed: d.id,
    });
    if (!second) return;
  }
  act(`Deployment ${d.id} removed`, () => api('DELETE', path));
}

// ---------------------------------------------------------------------------------------
// Services

const expanded = new Set();

function servicesView(root) {
  const body = h('div', { testid: 'services' });
  root.append(
    h('div', { class: 'view-head' }, h('h1', {}, 'Services'),
      h('p', { class: 'hint' }, 'The latest revision of each service: where its new invocations go.')),
    body,
  );
  const wanted = decodeURIComponent(location.hash.slice(1));
  if (wanted) expanded.add(wanted);
  return {
    async refresh() {
      const { services } = await api('GET', '/services');
      services.sort((a, b) => a.name.localeCompare(b.name));
      const handlers = await Promise.all(
        services.map((s) => (expanded.has(s.name) ? api('GET', `/services/${enc(s.name)}/handlers`).then((r) => r.handlers).catch(() => null) : null)),
      );
      if (!services.length) {
        body.replaceChildren(empty('No services: register a deployment first.'));
        return;
      }
      body.replaceChildren(h('table', { class: 'list' },
        h('thead', {}, h('tr', {}, ['', 'Service', 'Type', 'Revision', 'Deployment', 'Visibility', 'Handlers', ''].map((c) => h('th', {}, c)))),
        h('tbody', {}, services.flatMap((s, i) => serviceRows(s, handlers[i])))));
    },
  };
}

function serviceRows(s, handlers) {
  const open = expanded.has(s.name);
  const toggle = () => {
    if (open) expanded.delete(s.name);
    else expanded.add(s.name);
    refresh();
  };
  const row = h('tr', { testid: 'service-row', 'data-service': s.name, class: open ? 'open' : '' },
    h('td', {}, h('button', { type: 'button', class: 'link', testid: 'service-toggle', 'aria-expanded': String(open), onclick: toggle }, open ? '▾' : '▸')),
    h('td', {}, h('strong', {}, s.name)),
    h('td', {}, s.ty),
    h('td', {}, s.revision),
    h('td', {}, h('code', {}, s.deployment_id), s.ramp ? h('div', { class: 'small' }, `ramp: ${s.ramp.percent}% to `, h('code', {}, s.ramp.deployment_id)) : null),
    h('td', {}, s.public ? badge('public', 'active', 'service-visibility') : badge('private', 'drained', 'service-visibility')),
    h('td', {}, (s.handlers || []).length),
    h('td', { class: 'actions' },
      link(`/ui/invocations?service=${enc(s.name)}`, 'Invocations'),
      s.public
        ? h('button', { type: 'button', testid: 'service-hide', onclick: () => setPublic(s, false) }, 'Hide')
        : h('button', { type: 'button', testid: 'service-show', onclick: () => setPublic(s, true) }, 'Make public')));
  if (!open) return [row];
  const inner = handlers
    ? h('table', { class: 'inner', testid: 'service-handlers' },
      h('thead', {}, h('tr', {}, ['Handler', 'Type', 'Visibility', 'Input', 'Output', 'Retry'].map((c) => h('th', {}, c)))),
      h('tbody', {}, handlers.map((hd) => h('tr', { testid: 'handler-row', 'data-handler': hd.name },
        h('td', {}, h('code', {}, hd.name)),
        h('td', {}, hd.ty || '—'),
        h('td', {}, hd.public ? 'public' : 'private'),
        h('td', { class: 'small' }, hd.input_description),
        h('td', { class: 'small' }, hd.output_description),
        h('td', { class: 'small' }, retrySummary(hd.retry_policy, 'as the service'))))))
    : h('p', { class: 'muted' }, 'Could not read the handlers.');
  const settings = [
    ['idempotency retention', s.idempotency_retention], ['journal retention', s.journal_retention],
    ['workflow retention', s.workflow_completion_retention], ['inactivity timeout', s.inactivity_timeout],
    ['abort timeout', s.abort_timeout], ['retries', retrySummary(s.retry_policy, 'server default')],
  ].filter(([, v]) => v);
  return [row, h('tr', { class: 'detail' }, h('td', {}), h('td', { colspan: 7 },
    s.documentation ? h('p', {}, s.documentation) : null,
    h('p', { class: 'small settings', testid: 'service-settings' }, settings.map(([k, v]) => h('span', {}, h('span', { class: 'muted' }, `${k} `), v))),
    inner))];
}

function retrySummary(policy, otherwise) {
  if (!policy) return otherwise;
  const parts = [];
  if (policy.max_attempts !== undefined && policy.max_attempts !== null) parts.push(`${policy.max_attempts} attempts`);
  if (policy.initial_interval) parts.push(`from ${policy.initial_interval}`);
  if (policy.on_max_attempts) parts.push(`then ${policy.on_max_attempts}`);
  if (policy.max_interval) parts.push(`up to ${policy.max_interval}`);
  return parts.join(', ') || otherwise;
}

async function setPublic(s, value) {
  const ok = await confirmDialog(value
    ? { title: `Make ${s.name} public?`, body: ['The ingress accepts calls to it again.'], ok: 'Make public' }
    : { title: `Hide ${s.name}?`, body: ['The ingress stops accepting calls to it from outside. Other services can still call it.'], ok: 'Hide', danger: true });
  if (!ok) return;
  act(value ? `${s.name} is public` : `${s.name} is hidden`, () => api('PATCH', `/services/${enc(s.name)}`, { public: value }));
}

// ---------------------------------------------------------------------------------------
// Invocations

const STATUSES = ['pending', 'scheduled', 'ready', 'running', 'backing-off', 'suspended', 'paused', 'completed'];
const AGES = { '5m': '5 minutes', '1h': '1 hour', '24h': '1 day', '7d': '7 days' };

function invocationsView(root) {
  const params = new URLSearchParams(location.search);
  const filter = {
    text: params.get('q') || '',
    status: params.get('status') || '',
    service: params.get('service') || '',
    deployment: params.get('deployment') || '',
    age: params.get('age') || '',
  };
  let page = Number(params.get('page')) || 0;
  const select = (testid, key, options) => {
    const el = h('select', { testid, onchange: () => { filter[key] = el.value; page = 0; changed(); } },
      options.map(([value, label]) => h('option', { value }, label)));
    el.value = filter[key];
    return el;
  };
  let timer = null;
  const text = h('input', {
    type: 'search', placeholder: 'id, target, deployment, failure…', value: filter.text, testid: 'invocation-filter-text',
    oninput: () => {
      clearTimeout(timer);
      timer = setTimeout(() => { filter.text = text.value.trim(); page = 0; changed(); }, 300);
    },
  });
  const status = select('invocation-filter-status', 'status', [['', 'any status'], ['active', 'not completed'],
    ...STATUSES.map((s) => [s, s]), ['succeeded', 'completed: succeeded'], ['failed', 'completed: failed']]);
  const service = select('invocation-filter-service', 'service', [['', 'any service']]);
  const deployment = select('invocation-filter-deployment', 'deployment', [['', 'any deployment']]);
  const age = select('invocation-filter-age', 'age', [['', 'any age'], ...Object.keys(AGES).map((a) => [a, `created in the last ${a}`])]);
  const counts = h('div', { class: 'counts', testid: 'invocation-counts' });
  const table = h('div', { testid: 'invocations' });
  const pager = h('div', { class: 'pager' });
  root.append(
    h('div', { class: 'view-head' }, h('h1', {}, 'Invocations')),
    h('div', { class: 'toolbar' }, text, status, service, deployment, age),
    counts, table, pager,
  );

  function changed() {
    const q = new URLSearchParams();
    if (filter.text) q.set('q', filter.text);
    for (const k of ['status', 'service', 'deployment', 'age']) if (filter[k]) q.set(k, filter[k]);
    if (page) q.set('page', page);
    history.replaceState(null, '', `/ui/invocations${q.toString() ? `?${q}` : ''}`);
    refresh();
  }

  /** Keeps a select's options in step with what exists, and its choice. */
  function options(el, values, key) {
    const all = [...new Set([...values, filter[key]].filter(Boolean))];
    const have = [...el.options].slice(1).map((o) => o.value);
    if (have.join('\n') !== all.join('\n')) {
      el.replaceChildren(el.options[0], ...all.map((v) => h('option', { value: v }, v)));
    }
    el.value = filter[key];
  }

  return {
    async refresh() {
      const [services, deployments, byStatus, rows] = await Promise.all([
        api('GET', '/services'),
        api('GET', '/deployments'),
        sql('SELECT status, completion_result, count(*) AS n FROM sys_invocation GROUP BY status, completion_result'),
        sql(invocationsQuery(filter, page)),
      ]);
      options(service, services.services.map((s) => s.name).sort(), 'service');
      options(deployment, deployments.deployments.map((d) => d.id), 'deployment');
      counts.replaceChildren(...statusCounts(byStatus, (value) => { filter.status = value; status.value = value; page = 0; changed(); }));
      const more = rows.length > PAGE_SIZE;
      const shown = rows.slice(0, PAGE_SIZE);
      table.replaceChildren(shown.length ? invocationTable(shown) : empty('No invocation matches.'));
      pager.replaceChildren(
        h('button', { type: 'button', testid: 'page-prev', disabled: page === 0, onclick: () => { page -= 1; changed(); } }, '← Newer'),
        h('span', { class: 'muted', testid: 'page-number' }, shown.length ? `${page * PAGE_SIZE + 1}–${page * PAGE_SIZE + shown.length}` : ''),
        h('button', { type: 'button', testid: 'page-next', disabled: !more, onclick: () => { page += 1; changed(); } }, 'Older →'));
    },
  };
}

function invocationsQuery(f, page) {
  const where = [];
  if (f.status === 'active') where.push("status <> 'completed'");
  else if (f.status === 'succeeded') where.push("status = 'completed' AND completion_result = 'success'");
  else if (f.status === 'failed') where.push("status = 'completed' AND completion_result = 'failure'");
  else if (f.status) where.push(`status = ${lit(f.status)}`);
  if (f.service) where.push(`target_service_name = ${lit(f.service)}`);
  if (f.deployment) where.push(`pinned_deployment_id = ${lit(f.deployment)}`);
  if (AGES[f.age]) where.push(`created_at >= now() - INTERVAL '${AGES[f.age]}'`);
  if (f.text) {
    const needle = lit(f.text.toLowerCase());
    const columns = ['id', 'target', 'pinned_deployment_id', 'idempotency_key', 'last_failure', 'completion_failure'];
    where.push(`(${columns.map((c) => `strpos(lower(coalesce(${c}, '')), ${needle}) > 0`).join(' OR ')})`);
  }
  return 'SELECT id, target, status, completion_result, completion_failure, pinned_deployment_id, pinned_service_revision, '
    + 'created_at, modified_at, retry_count, last_failure, last_failure_error_code FROM sys_invocation'
    + (where.length ? ` WHERE ${where.join(' AND ')}` : '')
    + ` ORDER BY created_at DESC, id LIMIT ${PAGE_SIZE + 1} OFFSET ${page * PAGE_SIZE}`;
}

function statusCounts(rows, choose) {
  const n = {};
  let failed = 0;
  for (const r of rows) {
    n[r.status] = (n[r.status] || 0) + Number(r.n);
    if (r.status === 'completed' && r.completion_result === 'failure') failed += Number(r.n);
  }
  const chips = STATUSES.filter((s) => n[s]).map((s) => h('button', { type: 'button', class: 'chip clickable', onclick: () => choose(s) }, badge(s, s), ` ${n[s]}`));
  if (failed) chips.push(h('button', { type: 'button', class: 'chip clickable', onclick: () => choose('failed') }, badge('failed', 'failed'), ` ${failed}`));
  return chips;
}

/** The status a user reads: completed ones say how they ended. */
function statusBadge(row, testid) {
  if (row.status === 'completed') {
    return row.completion_result === 'failure' ? badge('completed: failed', 'failed', testid) : badge('completed', 'completed', testid);
  }
  return badge(row.status, row.status, testid);
}

function invocationTable(rows) {
  return h('table', { class: 'list' },
    h('thead', {}, h('tr', {}, ['Invocation', 'Target', 'Status', 'Deployment', 'Created', 'Modified', 'Last failure'].map((c) => h('th', {}, c)))),
    h('tbody', {}, rows.map((r) => h('tr', { testid: 'invocation-row', 'data-invocation-id': r.id, 'data-status': r.status },
      h('td', {}, link(invocationHref(r.id), r.id, { class: 'mono', testid: 'invocation-link' })),
      h('td', {}, r.target),
      h('td', {}, statusBadge(r, 'invocation-status'), r.retry_count > 0 ? h('span', { class: 'small muted' }, ` ${r.retry_count} retries`) : null),
      h('td', {}, r.pinned_deployment_id ? h('code', {}, r.pinned_deployment_id) : h('span', { class: 'muted' }, 'not pinned'),
        r.pinned_service_revision ? h('span', { class: 'small muted' }, ` rev ${r.pinned_service_revision}`) : null),
      h('td', {}, when(r.created_at)),
      h('td', {}, when(r.modified_at)),
      h('td', { class: 'small failure' }, r.last_failure ? `${r.last_failure_error_code ? `[${r.last_failure_error_code}] ` : ''}${r.last_failure}` : r.completion_failure || '')))));
}

// ---------------------------------------------------------------------------------------
// One invocation: facts, retries, journal timeline, object state, actions

const ACTIONS = [
  { name: 'cancel', label: 'Cancel', danger: true, text: 'The handler sees a cancellation at its next step and may compensate; the invocation ends with a cancellation failure.', when: (s) => s !== 'completed' },
  { name: 'kill', label: 'Kill', danger: true, text: 'It ends at once, with the invocations it called, without telling the handler. No compensation runs.', when: (s) => s !== 'completed' },
  { name: 'pause', label: 'Pause', text: 'No new attempt starts until it is resumed.', when: (s) => s !== 'completed' && s !== 'paused' },
  { name: 'resume', label: 'Resume', text: 'Its next attempt starts now, on the deployment it is pinned to.', when: (s) => ['paused', 'backing-off', 'suspended'].includes(s) },
  { name: 'purge', label: 'Purge', danger: true, text: 'Its result and journal are forgotten; attaching to it will no longer work.', when: (s) => s === 'completed' },
];

function invocationView(root, id) {
  const head = h('div', { class: 'view-head' },
    h('p', { class: 'crumbs' }, link('/ui/invocations', '← Invocations')),
    h('h1', { class: 'mono' }, id));
  const body = h('div', { testid: 'invocation-detail', 'data-invocation-id': id });
  root.append(head, body);
  return {
    async refresh() {
      const [inv] = await sql(`SELECT * FROM sys_invocation WHERE id = ${lit(id)}`);
      if (!inv) {
        body.replaceChildren(empty('No such invocation: it never existed, or it completed and was purged or is past its retention.'));
        return;
      }
      const journal = await sql('SELECT index, entry_type, name, completed, invoked_id, invoked_target, sleep_wakeup_at, promise_name, entry_json, appended_at '
        + `FROM sys_journal WHERE id = ${lit(id)} ORDER BY index`);
      const keyed = inv.target_service_key != null;
      const state = keyed
        ? await sql(`SELECT key, value_utf8, value_length FROM state WHERE service_name = ${lit(inv.target_service_name)} AND service_key = ${lit(inv.target_service_key)} ORDER BY key`)
        : null;
      body.replaceChildren(...[
        summary(inv),
        actions(inv),
        retries(inv),
        h('section', {}, h('h2', {}, 'Journal'), timeline(journal, inv)),
        keyed ? objectState(inv, state) : null,
      ].filter(Boolean));
    },
  };
}

function summary(inv) {
  const fact = (label, value) => [h('dt', {}, label), h('dd', {}, value ?? h('span', { class: 'muted' }, '—'))];
  return h('section', { class: 'summary' },
    h('div', { class: 'status-line' }, statusBadge(inv, 'invocation-detail-status'), ' ', h('strong', {}, inv.target),
      inv.completion_failure ? h('span', { class: 'failure', testid: 'invocation-outcome' }, ` ${inv.completion_failure}`) : null,
      inv.status === 'completed' && inv.completion_result === 'success' ? h('span', { class: 'muted', testid: 'invocation-outcome' }, ' succeeded') : null),
    h('dl', { class: 'facts' },
      fact('Service', inv.target_service_name),
      fact('Handler', inv.target_handler_name),
      inv.target_service_key != null ? fact('Key', h('code', {}, inv.target_service_key)) : null,
      fact('Pinned deployment', inv.pinned_deployment_id ? h('code', { testid: 'invocation-deployment' }, inv.pinned_deployment_id) : null),
      fact('Revision', inv.pinned_service_revision),
      inv.pinned_lambda_version ? fact('Lambda version', inv.pinned_lambda_version) : null,
      fact('Invoked by', inv.invoked_by_id ? link(invocationHref(inv.invoked_by_id), inv.invoked_by_target || inv.invoked_by_id) : inv.invoked_by),
      inv.idempotency_key ? fact('Idempotency key', h('code', {}, inv.idempotency_key)) : null,
      fact('Created', when(inv.created_at)),
      inv.scheduled_start_at ? fact('Starts', when(inv.scheduled_start_at)) : null,
      fact('Running since', inv.running_at ? when(inv.running_at) : null),
      fact('Modified', when(inv.modified_at)),
      inv.completed_at ? fact('Completed', when(inv.completed_at)) : null,
      fact('Journal', `${inv.journal_size ?? 0} entries`)));
}

function actions(inv) {
  return h('div', { class: 'action-bar' }, ACTIONS.map((a) => h('button', {
    type: 'button', class: a.danger ? 'danger-outline' : '', testid: `action-${a.name}`, disabled: !a.when(inv.status),
    onclick: async () => {
      const ok = await confirmDialog({ title: `${a.label} ${inv.id}?`, body: [`${inv.target} is ${inv.status}.`, a.text], ok: `${a.label} invocation`, danger: !!a.danger });
      if (ok) act(`${a.label}: requested for ${inv.id}`, () => api('PATCH', `/invocations/${enc(inv.id)}/${a.name}`));
    },
  }, a.label)));
}

function retries(inv) {
  if (!(inv.retry_count > 0) && !inv.last_failure) return null;
  const related = inv.last_failure_related_command_name || inv.last_failure_related_entry_name;
  const relatedType = inv.last_failure_related_command_type || inv.last_failure_related_entry_type;
  const relatedIndex = inv.last_failure_related_command_index ?? inv.last_failure_related_entry_index;
  return h('section', { class: 'retries', testid: 'retry-info' },
    h('h2', {}, 'Retries'),
    h('p', {}, h('strong', { testid: 'retry-count' }, `${inv.retry_count || 0} failed attempts`), ' since the journal last grew',
      inv.next_retry_at ? [' · next attempt ', when(inv.next_retry_at)] : null,
      inv.last_attempt_deployment_id ? [' · last attempt on ', h('code', {}, inv.last_attempt_deployment_id)] : null,
      inv.last_start_at ? [' ', when(inv.last_start_at)] : null),
    inv.last_failure ? h('pre', { class: 'failure', testid: 'last-failure' },
      `${inv.last_failure_error_code ? `[${inv.last_failure_error_code}] ` : ''}${inv.last_failure}`) : null,
    relatedType || related ? h('p', { class: 'small muted' }, `at journal entry ${relatedIndex ?? '?'}: ${relatedType || ''} ${related || ''}`) : null);
}

/** The body of one entry's JSON: {"Command":{"Sleep":{…}}} → {…}, and for notifications
 *  {"Notification":{"Completion":{"Run":{…}}}} → {…}. */
function entryBody(json) {
  let node = json;
  for (let depth = 0; depth < 4; depth++) {
    if (!node || typeof node !== 'object' || Array.isArray(node)) return null;
    const keys = Object.keys(node);
    if (keys.length !== 1 || ['result', 'completion_id', 'payload', 'value', 'key', 'id'].includes(keys[0])) return node;
    node = node[keys[0]];
  }
  return node;
}

/** What to show of a result: [label, text, kind]. */
function resultFact(label, result) {
  if (result === 'Void') return [label, 'void', 'ok'];
  if (result && typeof result === 'object') {
    if ('Success' in result) return [label, preview(result.Success), 'ok'];
    if ('Failure' in result) return [`${label}: failure`, `[${result.Failure.code}] ${result.Failure.message}`, 'fail'];
    if ('InvocationId' in result) return ['invocation', result.InvocationId, ''];
    if ('StateKeys' in result) return ['keys', result.StateKeys.join(', '), ''];
  }
  return null;
}

function entryFacts(entry) {
  let body;
  try {
    body = entryBody(JSON.parse(entry.entry_json));
  } catch {
    return [];
  }
  if (!body) return [];
  const facts = [];
  if (typeof body.key === 'string') facts.push(['key', body.key, '']);
  if (Array.isArray(body.payload)) facts.push(['input', preview(body.payload), '']);
  if (Array.isArray(body.value)) facts.push(['value', preview(body.value), '']);
  else if (body.value) facts.push(resultFact('value', body.value));
  if (body.result !== undefined) facts.push(resultFact(entry.entry_type === 'Command: Output' ? 'output' : 'result', body.result));
  if (body.request && Array.isArray(body.request.parameter)) facts.push(['parameter', preview(body.request.parameter), '']);
  return facts.filter(Boolean);
}

function timeline(journal, inv) {
  if (!journal.length) {
    return empty(inv.status === 'completed' ? 'No journal kept (it is past its journal retention, or the service keeps none).' : 'No journal entries yet.');
  }
  return h('ol', { class: 'timeline', testid: 'journal' }, journal.map((e) => {
    const [kind, what] = e.entry_type.includes(': ') ? e.entry_type.split(': ') : ['', e.entry_type];
    const pending = kind === 'Command' && !e.completed;
    const wake = parseTime(e.sleep_wakeup_at);
    return h('li', {
      class: `entry ${kind === 'Notification' ? 'notification' : 'command'} ${pending ? 'pending' : ''}`,
      testid: 'journal-entry', 'data-index': e.index, 'data-entry-type': e.entry_type, 'data-completed': String(!!e.completed),
    },
      h('div', { class: 'dot' }),
      h('div', { class: 'entry-body' },
        h('div', { class: 'entry-head' },
          h('span', { class: 'index' }, `#${e.index}`),
          h('span', { class: 'kind' }, kind),
          h('strong', { testid: 'journal-entry-type' }, what),
          e.name ? h('span', { class: 'step-name' }, `“${e.name}”`) : null,
          kind === 'Command' ? (e.completed ? badge('completed', 'completed') : badge('waiting', 'suspended', 'journal-entry-waiting')) : null,
          h('span', { class: 'at' }, when(e.appended_at))),
        wake !== null ? h('p', { class: 'sleep', testid: 'journal-sleep' }, e.completed ? 'Woke up ' : 'Sleeps until ',
          h('time', { datetime: e.sleep_wakeup_at, title: e.sleep_wakeup_at }, new Date(wake).toLocaleTimeString()), ' (', when(e.sleep_wakeup_at), ')') : null,
        e.invoked_target ? h('p', {}, 'Calls ', h('code', {}, e.invoked_target), e.invoked_id ? [' → ', link(invocationHref(e.invoked_id), e.invoked_id, { class: 'mono' })] : null) : null,
        e.promise_name ? h('p', {}, 'Promise ', h('code', {}, e.promise_name)) : null,
        entryFacts(e).map(([label, text, k]) => h('p', { class: `fact ${k === 'fail' ? 'failure' : ''}` }, h('span', { class: 'label' }, `${label}: `), h('code', {}, text)))));
  }));
}

function objectState(inv, rows) {
  return h('section', {},
    h('h2', {}, 'State of ', h('code', {}, `${inv.target_service_name}/${inv.target_service_key}`)),
    rows.length
      ? h('table', { class: 'list', testid: 'state-table' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Key'), h('th', {}, 'Value'), h('th', {}, 'Size'))),
        h('tbody', {}, rows.map((r) => h('tr', { testid: 'state-row', 'data-key': r.key },
          h('td', {}, h('code', {}, r.key)),
          h('td', { class: 'mono' }, r.value_utf8 ?? h('span', { class: 'muted' }, 'binary')),
          h('td', { class: 'small muted' }, `${r.value_length} B`)))))
      : empty('No state.'));
}

// ---------------------------------------------------------------------------------------
// Router and refresh

let current = null;
let running = null;
let again = false;

/** Redraws the current view's data; a call while one runs runs once more after it. */
async function refresh() {
  if (running) {
    again = true;
    return running;
  }
  const view = current;
  if (!view) return;
  running = (async () => {
    try {
      await view.refresh();
      if (view === current) {
        $('auth').hidden = true;
        $('view').classList.remove('locked');
        view.error.hidden = true;
        $('updated').textContent = `updated ${new Date().toLocaleTimeString()}`;
      }
    } catch (e) {
      if (e.status !== 401 && view === current) {
        view.error.hidden = false;
        view.error.textContent = `Could not read the admin API: ${e.message}`;
      }
    } finally {
      running = null;
    }
  })();
  await running;
  if (again) {
    again = false;
    await refresh();
  }
}

function route() {
  const [view, id] = location.pathname.replace(/^\/ui\/?/, '').split('/').map((p) => decodeURIComponent(p));
  const root = $('view');
  const error = h('div', { class: 'view-error', testid: 'view-error', hidden: true });
  root.replaceChildren(error);
  const name = ['services', 'invocations'].includes(view) ? view : 'deployments';
  for (const a of document.querySelectorAll('nav a')) a.classList.toggle('current', a.dataset.view === name);
  let made;
  if (name === 'invocations' && id) {
    made = invocationView(root, id);
    document.title = `${id} · perdure`;
  } else {
    made = { deployments: deploymentsView, services: servicesView, invocations: invocationsView }[name](root);
    document.title = `${name[0].toUpperCase()}${name.slice(1)} · perdure`;
  }
  current = { ...made, error };
  refresh();
}

function navigate(href) {
  history.pushState(null, '', href);
  route();
  window.scrollTo(0, 0);
}

document.addEventListener('click', (event) => {
  const a = event.target.closest('a[data-nav]');
  if (!a || event.metaKey || event.ctrlKey || event.shiftKey || event.button !== 0) return;
  event.preventDefault();
  navigate(a.getAttribute('href'));
});
window.addEventListener('popstate', route);

$('auth-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const value = $('auth-token').value.trim();
  if (!value) return;
  token.set(value);
  $('auth-token').value = '';
  showSignOut();
  refresh();
});
$('sign-out').addEventListener('click', () => {
  token.clear();
  showSignOut();
  refresh();
});
$('refresh-now').addEventListener('click', () => refresh());
setInterval(() => {
  if ($('auto-refresh').checked && !document.hidden && !$('confirm').open) refresh();
}, REFRESH_MS);

showSignOut();
route();
