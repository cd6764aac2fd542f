import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { Provider } from 'urql';
import { loadConfig } from '../shared/config';
import { createKit } from '../shared/kit';
import { createUrqlClient } from '../shared/urql';
import '../shared/styles.css';
import './screen.css';
import { Screen } from './Screen';

const config = await loadConfig();
// Everything the big screen shows is public (standings, session, reactions, pool): no token.
const token = () => null;
const ovation = createKit(config.apiUrl, token);
const client = createUrqlClient(config.apiUrl, ovation, token);

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <Provider value={client}>
      <Screen />
    </Provider>
  </StrictMode>,
);
