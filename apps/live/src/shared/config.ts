/**
 * Where the API is and who the user is. The page asks its own server for `/config.json`
 * ({ apiUrl }); without one (another static host), `?api=` or this origin's /graphql.
 */
export interface LiveConfig {
  apiUrl: string;
}

export async function loadConfig(): Promise<LiveConfig> {
  const fromQuery = new URLSearchParams(location.search).get('api');
  if (fromQuery) return { apiUrl: fromQuery };
  try {
    const response = await fetch('/config.json');
    if (response.ok) return (await response.json()) as LiveConfig;
  } catch {
    // no config endpoint: same origin
  }
  return { apiUrl: new URL('/graphql', location.href).toString() };
}

/** The query string's parameter, e.g. `screen.html?competition=<id>`. */
export function param(name: string): string | null {
  return new URLSearchParams(location.search).get(name);
}

/** Replaces one query parameter without a reload (the screen's URL then names what it shows). */
export function setParam(name: string, value: string | null): void {
  const url = new URL(location.href);
  if (value === null) url.searchParams.delete(name);
  else url.searchParams.set(name, value);
  history.replaceState(null, '', url);
}

export interface Guest {
  token: string;
  name: string;
}

const GUEST_KEY = 'ovation.guest';

/** The audience member of this browser, if they joined before (kept across reloads). */
export function storedGuest(): Guest | null {
  try {
    const guest = JSON.parse(localStorage.getItem(GUEST_KEY) ?? 'null') as Guest | null;
    if (!guest?.token) return null;
    // An expired token is of no use: join again.
    const payload = JSON.parse(atob(guest.token.split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/'))) as {
      exp?: number;
    };
    return payload.exp && payload.exp * 1000 > Date.now() + 60_000 ? guest : null;
  } catch {
    return null;
  }
}

/**
 * A guest sign-in for the demo: the example runner's dev-only endpoint signs an AUDIENCE token
 * (apps/live/server/serve.ts). A real app signs in its own way (wallet sign-in, an identity
 * provider) and hands the kit the token it got.
 */
export async function joinAsGuest(name: string): Promise<Guest> {
  const response = await fetch('/dev/guest-token', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name }),
  });
  if (!response.ok) throw new Error(`guest sign-in failed (${response.status}): ${await response.text()}`);
  const { token } = (await response.json()) as { token: string };
  const guest = { token, name };
  localStorage.setItem(GUEST_KEY, JSON.stringify(guest));
  return guest;
}

/**
 * The organiser's token: the runner prints console.html#token=…; it is kept for this tab only
 * (sessionStorage) and taken out of the address bar.
 */
export function organiserToken(): string | null {
  const hash = new URLSearchParams(location.hash.slice(1));
  const fromHash = hash.get('token');
  if (fromHash) {
    sessionStorage.setItem('ovation.organiser', fromHash);
    history.replaceState(null, '', location.pathname + location.search);
    return fromHash;
  }
  return sessionStorage.getItem('ovation.organiser');
}

export function saveOrganiserToken(token: string): void {
  sessionStorage.setItem('ovation.organiser', token);
}
