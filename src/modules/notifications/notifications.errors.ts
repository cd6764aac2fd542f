import { notFound, type AppError } from '../../errors.js';

export const userNotFound = (userId: string): AppError => notFound('User', userId);
