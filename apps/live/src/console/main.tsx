import { ApolloClient, ApolloLink, HttpLink, InMemoryCache } from '@apollo/client';
import { SetContextLink } from '@apollo/client/link/context';
import { ApolloProvider } from '@apollo/client/react';
import { OvationLink } from '@ovation/client/apollo';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { loadConfig, organiserToken } from '../shared/config';
import { createKit } from '../shared/kit';
import '../shared/styles.css';
import './console.css';
import { Console, TokenForm } from './Console';

const config = await loadConfig();
let token = organiserToken();
const ovation = createKit(config.apiUrl, () => token);
// Subscriptions go through the kit (reconnects, resume, fallbacks); queries and mutations on to
// the HttpLink with the organiser's token.
const client = new ApolloClient({
  link: ApolloLink.from([
    new OvationLink(ovation),
    new SetContextLink((previous) => ({
      headers: {
        ...(previous.headers as Record<string, string> | undefined),
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
    })),
    new HttpLink({ uri: config.apiUrl }),
  ]),
  cache: new InMemoryCache(),
  defaultOptions: { watchQuery: { fetchPolicy: 'cache-and-network' } },
});

const root = createRoot(document.getElementById('root')!);
function render() {
  root.render(
    <StrictMode>
      <ApolloProvider client={client}>
        {token ? (
          <Console />
        ) : (
          <TokenForm
            onToken={(value) => {
              token = value;
              render();
            }}
          />
        )}
      </ApolloProvider>
    </StrictMode>,
  );
}
render();
