import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { Provider } from 'urql';
import { loadConfig, storedGuest, type Guest } from '../shared/config';
import { createKit } from '../shared/kit';
import { createUrqlClient } from '../shared/urql';
import '../shared/styles.css';
import './audience.css';
import { App } from './App';

const config = await loadConfig();
// The kit asks for the token on every connect: the guest who joins later is picked up then.
let guest: Guest | null = storedGuest();
const token = () => guest?.token ?? null;
const ovation = createKit(config.apiUrl, token);
const client = createUrqlClient(config.apiUrl, ovation, token);

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <Provider value={client}>
      <App initialGuest={guest} onJoin={(joined) => (guest = joined)} />
    </Provider>
  </StrictMode>,
);
