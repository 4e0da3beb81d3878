/** The flights contract against the in-process implementation. */
import { LocalFlights } from '../../src/coordination/flights.js';
import { flightsContract } from './flights.contract.js';

flightsContract('in-process', () => new LocalFlights());
