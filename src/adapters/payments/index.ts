export type {
  PaymentGuardOptions,
  PaymentOperation,
  ProviderCallContext,
} from './payment-guard.js';
export { defaultPaymentGuardOptions, PaymentGuard } from './payment-guard.js';
export { isTransientProviderError } from './transient.js';
