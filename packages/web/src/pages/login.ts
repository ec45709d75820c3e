/**
 * #/login — username and password → POST /auth/login (the server sets the session cookie),
 * then on to the page the user came from (`next`) or the overview. Wrong credentials show the
 * server's message.
 */
import { errorMessage } from '../api.js';
import { errorBox, h, put } from '../dom.js';
import { navigate, type PageContext } from '../router.js';
import { login, session } from '../session.js';

function target(next: string | null): string {
  return next && next.startsWith('#/') && !next.startsWith('#/login') ? next : '#/';
}

export function loginPage(ctx: PageContext): void {
  const next = target(ctx.query.get('next'));
  if (session()) {
    navigate(next);
    return;
  }
  const username = h('input', { name: 'username', id: 'username', autocomplete: 'username', required: true });
  const password = h('input', {
    name: 'password',
    id: 'password',
    type: 'password',
    autocomplete: 'current-password',
    required: true,
  });
  const message = h('div', { class: 'login-message' });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary btn-block' }, 'Sign in');
  const form = h(
    'form',
    {
      class: 'login-form',
      on: {
        submit: (ev) => {
          ev.preventDefault();
          submit.disabled = true;
          put(message);
          login(username.value.trim(), password.value)
            .then(() => navigate(next))
            .catch((e: unknown) => {
              put(message, errorBox(errorMessage(e)));
              password.select();
            })
            .finally(() => {
              submit.disabled = false;
            });
        },
      },
    },
    h(
      'label',
      { class: 'field', for: 'username' },
      h('span', { class: 'field-label' }, 'Username'),
      username,
    ),
    h(
      'label',
      { class: 'field', for: 'password' },
      h('span', { class: 'field-label' }, 'Password'),
      password,
    ),
    message,
    submit,
  );
  ctx.root.append(
    h(
      'section',
      { class: 'login-card', 'aria-labelledby': 'login-title' },
      h(
        'div',
        { class: 'login-brand' },
        h('img', { src: '/ui/favicon.svg', alt: '', width: 40, height: 40 }),
        'Opsplane',
      ),
      h('h1', { id: 'login-title' }, 'Sign in'),
      form,
    ),
  );
  username.focus();
}
