// Jest setup provided by Grafana scaffolding
import './.config/jest-setup';

import { configure } from '@testing-library/react';

// findBy*/waitFor give up after 1 s by default, too short on a busy shared machine.
configure({ asyncUtilTimeout: 10000 });

// Grafana's Combobox measures option text on a canvas, which jsdom lacks.
HTMLCanvasElement.prototype.getContext = () => ({ measureText: (text) => ({ width: String(text).length * 7 }) });
